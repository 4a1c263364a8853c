package http

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rendertrust/rendertrust/commands"
	"github.com/rendertrust/rendertrust/domain"
	"github.com/rendertrust/rendertrust/projections"
)

// dispatchRequest is POST /api/v1/jobs/dispatch. The guide's curl sends
// payload_ref; its SDK sends payload: {"ref": …}; inline JSON payloads are
// sent as payload.
type dispatchRequest struct {
	JobType     string          `json:"job_type"`
	PayloadRef  string          `json:"payload_ref"`
	Payload     json.RawMessage `json:"payload"`
	Priority    string          `json:"priority"`
	GPURequired bool            `json:"gpu_required"`
}

// payload returns the request's payload: a URI (payload_ref, or payload
// {"ref": "<uri>"}) or inline JSON. A type that needs no payload
// (cpu_benchmark, echo) gets the empty object when none is given.
func (r dispatchRequest) payload(typ domain.JobType) (domain.Payload, error) {
	raw := bytes.TrimSpace(r.Payload)
	hasInline := len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
	switch {
	case r.PayloadRef != "" && hasInline:
		return domain.Payload{}, domain.Errorf(domain.CodeInvalid, "payload_ref and payload: give one, not both")
	case r.PayloadRef != "":
		return domain.PayloadURI(r.PayloadRef)
	case !hasInline && !typ.NeedsPayload():
		return domain.PayloadInline([]byte("{}"))
	case !hasInline:
		return domain.Payload{}, domain.Errorf(domain.CodeInvalid, "payload_ref or payload: required for %s jobs", typ)
	}
	var ref struct {
		Ref string `json:"ref"`
	}
	if json.Unmarshal(raw, &ref) == nil && ref.Ref != "" && isOnlyRef(raw) {
		return domain.PayloadURI(ref.Ref)
	}
	return domain.PayloadInline(raw)
}

// isOnlyRef reports whether raw is an object whose only key is "ref".
func isOnlyRef(raw []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && len(m) == 1
}

func (s *Server) dispatchJob(c echo.Context) error {
	var req dispatchRequest
	if err := bindJSON(c, &req); err != nil {
		return err
	}
	typ, err := domain.ParseJobType(req.JobType)
	if err != nil {
		return err
	}
	p, err := req.payload(typ)
	if err != nil {
		return err
	}
	pr, err := domain.ParsePriority(req.Priority)
	if err != nil {
		return err
	}
	// The job id is derived from the Idempotency-Key: a retried request creates the same job.
	cmd := commands.SubmitJob{Owner: userOf(c), Type: typ, Priority: pr, GPU: req.GPURequired, Payload: p}
	res, err := s.Jobs.SubmitJob(c.Request().Context(), actor(c), cmd)
	if err != nil {
		return err
	}
	s.wroteForUser(c, res.Position)
	return c.JSON(http.StatusCreated, SubmitResponse{JobID: res.JobID, NodeID: res.NodeID, Status: res.Status, Cost: res.Cost})
}

// SubmitResponse answers POST /api/v1/jobs/dispatch.
type SubmitResponse struct {
	JobID  domain.JobID   `json:"job_id"`
	NodeID domain.NodeID  `json:"node_id"` // empty while the job waits for a free slot
	Status domain.Status  `json:"status"`
	Cost   domain.Credits `json:"cost"`
}

func (s *Server) listJobs(c echo.Context) error {
	limit, err := intParam(c, "limit", 0, 1, projections.PageLimitMax)
	if err != nil {
		return err
	}
	var st domain.Status
	if v := c.QueryParam("status"); v != "" {
		if st, err = domain.ParseStatus(v); err != nil {
			return err
		}
	}
	page, err := s.Reader.Jobs(c.Request().Context(), userOf(c), projections.JobQuery{Status: st, Cursor: c.QueryParam("cursor"), Limit: limit})
	if err != nil {
		return err
	}
	if page.Jobs == nil {
		page.Jobs = []projections.Job{}
	}
	return c.JSON(http.StatusOK, page)
}

func (s *Server) getJob(c echo.Context) error {
	j, err := s.Reader.Job(c.Request().Context(), userOf(c), domain.JobID(c.Param("id")))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, j)
}

// CancelResponse answers a cancel.
type CancelResponse struct {
	JobID  string        `json:"job_id"`
	Status domain.Status `json:"status"`
}

func (s *Server) cancelJob(c echo.Context) error {
	owner, id, a := userOf(c), domain.JobID(c.Param("id")), actor(c)
	pos, err := s.Jobs.CancelJob(c.Request().Context(), a, owner, id)
	if err != nil {
		return err
	}
	s.wroteForUser(c, pos)
	res := CancelResponse{JobID: string(id), Status: domain.StatusCancelled}
	return c.JSON(http.StatusOK, res)
}

// ResultLink is GET /api/v1/jobs/{id}/result.
type ResultLink struct {
	DownloadURL  string `json:"download_url"`
	ExpiresIn    int    `json:"expires_in"`
	ResultSHA256 string `json:"result_sha256"`
	ResultBytes  int64  `json:"result_bytes"`
}

var errNoResult = &domain.Error{Code: domain.CodeConflict, Message: "the job has no result: it is not COMPLETED"}

func (s *Server) jobResult(c echo.Context) error {
	j, err := s.Reader.Job(c.Request().Context(), userOf(c), domain.JobID(c.Param("id")))
	if err != nil {
		return err
	}
	if j.Status != domain.StatusCompleted {
		return errNoResult
	}
	u, err := s.Results.URL(c.Request().Context(), resultBlob(domain.JobID(j.ID), j.ResultSHA256), s.baseURL(), s.Now().Add(resultLinkTTL))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ResultLink{DownloadURL: u, ExpiresIn: int(resultLinkTTL.Seconds()), ResultSHA256: j.ResultSHA256, ResultBytes: j.ResultBytes})
}

// baseURL prefixes the download links this API serves: PublicURL, or else
// the address the server listens on — never the request's Host or
// X-Forwarded-* headers, which whoever sends or relays the request
// chooses, and which would point the link, signature included, at their
// host.
func (s *Server) baseURL() string {
	if s.PublicURL != "" {
		return strings.TrimRight(s.PublicURL, "/")
	}
	return s.listenBase
}

// listenURL is the http URL of the listener's address; an unspecified IP
// (listening on every interface) is named by loopback.
func listenURL(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String()
	}
	ip := tcp.IP
	switch {
	case ip == nil || ip.IsUnspecified() && ip.To4() != nil:
		ip = net.IPv4(127, 0, 0, 1)
	case ip.IsUnspecified():
		ip = net.IPv6loopback
	}
	return "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(tcp.Port))
}

var errBadLink = &domain.Error{Code: domain.CodeForbidden, Message: "download link invalid or expired"}

func (s *Server) downloadResult(c echo.Context) error {
	local, ok := s.Results.(localResults)
	if !ok {
		return &domain.Error{Code: domain.CodeNotFound, Message: "results are served by the object store's own links"}
	}
	id := c.Param("id")
	if err := local.Check(id, c.QueryParam("expires"), c.QueryParam("signature"), s.Now()); err != nil {
		return errBadLink
	}
	f, _, err := local.Open(id)
	if err != nil {
		return &domain.Error{Code: domain.CodeNotFound, Message: "result not found"}
	}
	defer f.Close()
	// Never the sniffed type: a result is the node's bytes, which a browser
	// must not run as a page of this origin.
	h := c.Response().Header()
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+id+`.result"`)
	h.Set(echo.HeaderContentType, "application/octet-stream")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(c.Response(), c.Request(), id, s.Now(), f)
	return nil
}

// JobTypeView is one job type as GET /api/v1/jobs/types lists it: the
// canonical name, the creator guide's display name, and what one job costs.
type JobTypeView struct {
	JobType     domain.JobType `json:"job_type"`
	DisplayName string         `json:"display_name"`
	Cost        domain.Credits `json:"cost"`
}

// JobTypesResponse is GET /api/v1/jobs/types: every job type, so clients
// show the configured prices instead of hard-coding them.
type JobTypesResponse struct {
	JobTypes []JobTypeView `json:"job_types"`
}

func (s *Server) jobTypes(c echo.Context) error {
	prices := s.Jobs.Prices()
	out := JobTypesResponse{JobTypes: []JobTypeView{}}
	for _, t := range domain.JobTypes() {
		cost, err := prices.Cost(t)
		if err != nil {
			return err
		}
		out.JobTypes = append(out.JobTypes, JobTypeView{JobType: t, DisplayName: t.DisplayName(), Cost: cost})
	}
	return c.JSON(http.StatusOK, out)
}
