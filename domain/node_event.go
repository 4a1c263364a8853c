package domain

import "time"

// NodeEnrolled records a compute node joining the network with its
// capabilities. It is the first event of the node's stream.
type NodeEnrolled struct {
	NodeID   NodeID    `json:"node_id"`
	Name     string    `json:"name"`
	JobTypes []JobType `json:"job_types"`
	GPU      bool      `json:"gpu"`
	Slots    int       `json:"slots"`
	At       time.Time `json:"at"`
}

// NodeCapabilitiesChanged records a node's new job types, GPU flag and slots.
type NodeCapabilitiesChanged struct {
	NodeID   NodeID    `json:"node_id"`
	JobTypes []JobType `json:"job_types"`
	GPU      bool      `json:"gpu"`
	Slots    int       `json:"slots"`
	At       time.Time `json:"at"`
}

// NodeRetired records that a node takes no more jobs. It is final.
type NodeRetired struct {
	NodeID NodeID    `json:"node_id"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// EventType returns EventNodeEnrolled.
func (NodeEnrolled) EventType() string { return EventNodeEnrolled }

// EventType returns EventNodeCapabilitiesChanged.
func (NodeCapabilitiesChanged) EventType() string { return EventNodeCapabilitiesChanged }

// EventType returns EventNodeRetired.
func (NodeRetired) EventType() string { return EventNodeRetired }
