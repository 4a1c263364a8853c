package domain

import (
	"fmt"
	"strings"
)

// JobType is the kind of work a job asks for.
type JobType string

// The job types. Their strings are part of the event log and the API and
// never change.
const (
	JobRender       JobType = "render"
	JobInference    JobType = "inference"
	JobGeneric      JobType = "generic"
	JobCPUBenchmark JobType = "cpu_benchmark"
	JobEcho         JobType = "echo"
)

// jobTypes lists every job type in a fixed order.
var jobTypes = [...]JobType{JobRender, JobInference, JobGeneric, JobCPUBenchmark, JobEcho}

// JobTypes returns every job type, in a fixed order.
func JobTypes() []JobType { return append([]JobType(nil), jobTypes[:]...) }

// Valid reports whether t is one of JobTypes().
func (t JobType) Valid() bool {
	for _, k := range jobTypes {
		if t == k {
			return true
		}
	}
	return false
}

// ParseJobType returns s as a JobType, or ErrUnknownJobType if it is not one.
// Matching ignores case ("Render" is render), as the guide writes the types
// both ways; the result is always the canonical lower-case name.
func ParseJobType(s string) (JobType, error) {
	t := JobType(strings.ToLower(s))
	if !t.Valid() {
		return "", fmt.Errorf("%w: %q", ErrUnknownJobType, truncate(s, 40))
	}
	return t, nil
}

// displayNames are the names the creator guide's cost table uses.
var displayNames = map[JobType]string{
	JobRender:       "Render",
	JobInference:    "AI Inference",
	JobCPUBenchmark: "CPU Benchmark",
	JobEcho:         "Echo (test)",
	JobGeneric:      "Generic",
}

// DisplayName returns the type's name as the creator guide shows it, e.g.
// "AI Inference" for inference, and "" for a type that is not valid.
func (t JobType) DisplayName() string { return displayNames[t] }

// NeedsPayload reports whether a job of type t needs a payload: echo and
// cpu_benchmark run without one (an empty JSON object stands in).
func (t JobType) NeedsPayload() bool { return t != JobEcho && t != JobCPUBenchmark }
