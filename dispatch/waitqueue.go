package dispatch

import (
	"cmp"
	"container/heap"

	"github.com/rendertrust/rendertrust/domain"
)

// jobClass is what a node must offer to run a job: its type, and a GPU
// when the job asks for one.
type jobClass struct {
	typ domain.JobType
	gpu bool
}

// waitQueue holds the queued jobs without a node, one heap per class, so
// the dispatcher finds the next job it can place in O(classes × log n)
// however long the backlog: highest priority first, then oldest, then by id.
type waitQueue struct {
	byClass map[jobClass]*jobHeap
	n       int
}

func newWaitQueue() waitQueue { return waitQueue{byClass: map[jobClass]*jobHeap{}} }

func (q *waitQueue) len() int { return q.n }

// add queues j; it must not be queued already.
func (q *waitQueue) add(j *jobState) {
	c := jobClass{j.typ, j.gpu}
	h, ok := q.byClass[c]
	if !ok {
		h = &jobHeap{}
		q.byClass[c] = h
	}
	heap.Push(h, j)
	q.n++
}

// remove takes j out of the queue; it must be queued.
func (q *waitQueue) remove(j *jobState) {
	heap.Remove(q.byClass[jobClass{j.typ, j.gpu}], j.queueIndex)
	q.n--
}

// next returns the first job of the classes for which fits is true.
func (q *waitQueue) next(fits func(jobClass) bool) (*jobState, bool) {
	var best *jobState
	for c, h := range q.byClass {
		if h.Len() == 0 {
			continue
		}
		head := (*h)[0]
		if best != nil && !goesFirst(head, best) {
			continue
		}
		if fits(c) {
			best = head
		}
	}
	return best, best != nil
}

// goesFirst orders waiting jobs: higher priority, then older, then lower id.
func goesFirst(a, b *jobState) bool {
	if c := cmp.Compare(a.priority.Rank(), b.priority.Rank()); c != 0 {
		return c > 0
	}
	if c := a.submittedAt.Compare(b.submittedAt); c != 0 {
		return c < 0
	}
	return a.id < b.id
}

// jobHeap is a container/heap of waiting jobs; each knows its index, so it
// can be removed from the middle when it leaves the queue.
type jobHeap []*jobState

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, k int) bool { return goesFirst(h[i], h[k]) }
func (h jobHeap) Swap(i, k int) {
	h[i], h[k] = h[k], h[i]
	h[i].queueIndex, h[k].queueIndex = i, k
}
func (h *jobHeap) Push(x any) {
	j := x.(*jobState)
	j.queueIndex = len(*h)
	*h = append(*h, j)
}
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	j.queueIndex = -1
	return j
}

// endedHeap orders ended jobs by the log position of their end, so Prune
// touches only the jobs it forgets.
type endedHeap []*jobState

func (h endedHeap) Len() int           { return len(h) }
func (h endedHeap) Less(i, k int) bool { return h[i].endPosition < h[k].endPosition }
func (h endedHeap) Swap(i, k int)      { h[i], h[k] = h[k], h[i] }
func (h *endedHeap) Push(x any)        { *h = append(*h, x.(*jobState)) }
func (h *endedHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return j
}
