package domain

import "fmt"

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
// Matching is exact: job types are lower case.
func ParseJobType(s string) (JobType, error) {
	t := JobType(s)
	if !t.Valid() {
		return "", fmt.Errorf("%w: %q", ErrUnknownJobType, truncate(s, 40))
	}
	return t, nil
}
