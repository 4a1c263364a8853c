package projectiontest

import (
	"strconv"

	"github.com/rendertrust/rendertrust/domain"
)

// settle deducts or releases the holds of the jobs that ended last round.
func (s *Sim) settle() {
	settles := s.settles
	s.settles = nil
	for _, st := range settles {
		i := s.userIndex(st.Owner)
		a := s.Accounts[i]
		var (
			ev  []domain.Event
			err error
		)
		if st.Action == domain.SettleDeduct {
			ev, err = a.Deduct(st.Job, s.at())
		} else {
			ev, err = a.Release(st.Job, st.Reason, s.at())
		}
		if decide(s, a, domain.AccountStream(a.User()), ev, err) && st.Action == domain.SettleDeduct {
			if h, _ := a.JobHold(st.Job); h.Deducted() > 0 {
				s.refundable = append(s.refundable, refundable{user: i, job: st.Job})
			}
		}
	}
}

// submitHeld creates the jobs whose credits were held last round.
func (s *Sim) submitHeld() {
	submits := s.submits
	s.submits = nil
	for _, p := range submits {
		j := domain.NewJob(p.id)
		ev, err := j.Submit(p.sub, s.at())
		if decide(s, j, domain.JobStream(p.id), ev, err) {
			s.Jobs[p.id] = j
			s.active = append(s.active, p.id)
		}
	}
}

// stepJobs moves about half of the active jobs one step along their
// lifecycle, with failures, retries, timeouts and cancels.
func (s *Sim) stepJobs() {
	var still []domain.JobID
	for _, id := range s.active {
		j := s.Jobs[id]
		if s.r.IntN(2) == 0 {
			s.stepJob(j)
		}
		if !j.Status().Terminal() {
			still = append(still, id)
		}
	}
	s.active = still
}

func (s *Sim) stepJob(j *domain.Job) {
	var (
		ev  []domain.Event
		err error
	)
	roll := s.r.IntN(100)
	switch j.Status() {
	case domain.StatusQueued:
		if roll < 4 {
			ev, err = j.Cancel("changed my mind", s.at())
		} else if node, ok := s.nodeFor(j); ok {
			ev, err = j.Dispatch(node, s.at())
		}
	case domain.StatusDispatched:
		switch {
		case roll < 4:
			ev, err = j.Cancel("no longer needed", s.at())
		case roll < 12:
			ev, err = j.TimeOut(s.at())
		default:
			ev, err = j.Start(j.Node(), s.at())
		}
	case domain.StatusRunning:
		if roll < 15 {
			ev, err = j.Fail(j.Node(), "exit status "+strconv.Itoa(1+roll), s.at())
		} else {
			ev, err = j.Complete(j.Node(), resultHash(s.seq+roll), int64(1000+roll), s.at())
		}
	}
	if !decide(s, j, domain.JobStream(j.ID()), ev, err) {
		return
	}
	for _, e := range ev {
		if st, ok := domain.SettlementOf(e); ok {
			s.settles = append(s.settles, st)
		}
	}
}

// nodeFor picks an active node that can run j.
func (s *Sim) nodeFor(j *domain.Job) (domain.NodeID, bool) {
	start := s.r.IntN(len(s.Nodes))
	for k := range s.Nodes {
		n := s.Nodes[(start+k)%len(s.Nodes)]
		if n.CanRun(j.Type(), j.GPU()) {
			return n.ID(), true
		}
	}
	return "", false
}

// holdNewJobs holds the credits of new jobs (buying credits first when
// short); the jobs are submitted next round.
func (s *Sim) holdNewJobs() {
	types := domain.JobTypes()
	prices := domain.DefaultPrices()
	for range s.cfg.Submits {
		i := s.r.IntN(len(s.Accounts))
		a := s.Accounts[i]
		typ := types[s.r.IntN(len(types))]
		cost, _ := prices.Cost(typ)
		if a.Available() < cost {
			s.purchase(i)
		}
		id := domain.JobID(s.id("j"))
		ev, err := a.Hold(id, cost, s.at())
		if !decide(s, a, domain.AccountStream(a.User()), ev, err) {
			continue
		}
		payload, _ := domain.PayloadURI("s3://bucket/scenes/" + string(id) + ".blend")
		priorities := []domain.Priority{domain.PriorityLow, domain.PriorityNormal, domain.PriorityHigh}
		s.submits = append(s.submits, pendingSubmit{id: id, sub: domain.Submission{
			Owner: a.User(), Type: typ, Priority: priorities[s.r.IntN(3)], GPU: s.r.IntN(4) == 0,
			Payload: payload, Cost: cost,
		}})
	}
}

// moveCredits makes occasional purchases, grants and refunds.
func (s *Sim) moveCredits() {
	for range max(1, len(s.Accounts)/50) {
		i := s.r.IntN(len(s.Accounts))
		switch s.r.IntN(10) {
		case 0, 1, 2:
			s.purchase(i)
		case 3:
			a := s.Accounts[i]
			ev, err := a.Grant(s.id("g"), domain.Credits(1+s.r.IntN(50)), "promotion", s.at())
			decide(s, a, domain.AccountStream(a.User()), ev, err)
		case 4:
			s.refund()
		}
	}
}

func (s *Sim) purchase(i int) {
	a := s.Accounts[i]
	pkgs := domain.Packages()
	provider := domain.ProviderStripe
	if s.r.IntN(3) == 0 {
		provider = domain.ProviderDev
	}
	p := pkgs[s.r.IntN(len(pkgs))].Purchase(s.id("p"), provider, s.id("cs"))
	ev, err := a.Purchase(p, s.at())
	decide(s, a, domain.AccountStream(a.User()), ev, err)
}

func (s *Sim) refund() {
	if len(s.refundable) == 0 {
		return
	}
	k := s.r.IntN(len(s.refundable))
	rf := s.refundable[k]
	a := s.Accounts[rf.user]
	h, _ := a.JobHold(rf.job)
	left := h.Deducted() - h.Refunded
	if left <= 0 {
		s.refundable = append(s.refundable[:k], s.refundable[k+1:]...)
		return
	}
	amount := 1 + domain.Credits(s.r.Int64N(int64(left)))
	ev, err := a.Refund(rf.job, amount, s.id("rf"), "dispute", s.at())
	decide(s, a, domain.AccountStream(a.User()), ev, err)
}

// changeNodes now and then changes a node's capabilities or retires one
// and enrolls a replacement (node 0, which runs everything, stays).
func (s *Sim) changeNodes() {
	if len(s.Nodes) < 2 || s.r.IntN(40) != 0 {
		return
	}
	k := 1 + s.r.IntN(len(s.Nodes)-1)
	n := s.Nodes[k]
	if s.r.IntN(4) == 0 {
		ev, err := n.Retire("decommissioned", s.at())
		if decide(s, n, domain.NodeStream(n.ID()), ev, err) {
			fresh := domain.NewNode(domain.NodeID(s.id("n")))
			ev, err := fresh.Enroll(domain.Enrollment{Name: "node " + string(fresh.ID()), Capabilities: s.randomCapabilities()}, s.at())
			if decide(s, fresh, domain.NodeStream(fresh.ID()), ev, err) {
				s.Nodes[k] = fresh
			}
		}
		return
	}
	ev, err := n.ChangeCapabilities(s.randomCapabilities(), s.at())
	decide(s, n, domain.NodeStream(n.ID()), ev, err)
}

func (s *Sim) userIndex(u domain.UserID) int {
	i, err := strconv.Atoi(string(u[1:]))
	if err != nil {
		panic("projectiontest: foreign user id " + string(u))
	}
	return i
}

// resultHash returns a valid SHA-256 hex string derived from n.
func resultHash(n int) string {
	const hexDigits = "0123456789abcdef"
	b := make([]byte, 64)
	for i := range b {
		b[i] = hexDigits[(n+i*7)%16]
	}
	return string(b)
}
