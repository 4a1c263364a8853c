//go:build race

package bundle_test

// raceEnabled is true under the race detector.
const raceEnabled = true
