package http

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/rendertrust/rendertrust/domain"
)

var (
	errLedgerOff   = &domain.Error{Code: domain.CodeUnavailable, Message: "the anchoring service is not running"}
	errNoSuchEntry = &domain.Error{Code: domain.CodeNotFound, Message: "ledger entry not found"}
)

// canSee reports whether the caller may see an entry: admins see all, a
// creator the entries of their own account and jobs. Others get 404, never
// 403, so entry ids leak nothing.
func (s *Server) canSee(c echo.Context, entryID string) error {
	if isAdmin(c) {
		return nil
	}
	ctx := c.Request().Context()
	stream, err := s.Ledger.EntryStream(ctx, entryID)
	if err != nil {
		return err
	}
	u := userOf(c)
	if stream == domain.AccountStream(u) {
		return nil
	}
	if job, ok := strings.CutPrefix(stream, domain.JobStream("")); ok {
		if _, err := s.Reader.Job(ctx, u, domain.JobID(job)); err == nil {
			return nil
		}
	}
	return errNoSuchEntry
}

func (s *Server) proof(c echo.Context) error {
	if s.Ledger == nil {
		return errLedgerOff
	}
	if err := s.canSee(c, c.Param("entry_id")); err != nil {
		return err
	}
	p, err := s.Ledger.Proof(c.Request().Context(), c.Param("entry_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

func (s *Server) verify(c echo.Context) error {
	if s.Ledger == nil {
		return errLedgerOff
	}
	if err := s.canSee(c, c.Param("entry_id")); err != nil {
		return err
	}
	v, err := s.Ledger.Verify(c.Request().Context(), c.Param("entry_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Server) consistency(c echo.Context) error {
	if s.Ledger == nil {
		return errLedgerOff
	}
	from, err1 := strconv.ParseUint(c.QueryParam("from"), 10, 64)
	to, err2 := strconv.ParseUint(c.QueryParam("to"), 10, 64)
	if err1 != nil || err2 != nil {
		return domain.Errorf(domain.CodeInvalid, "from and to: tree sizes (positive integers) are required")
	}
	p, err := s.Ledger.Consistency(c.Request().Context(), from, to)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// ChainInfo names the chain and contract the server anchors on, so a client
// can read anchored roots from the chain itself. RPCURL is empty unless the
// operator publishes one (an RPC URL can carry an API key).
type ChainInfo struct {
	ChainID  uint64 `json:"chain_id"`
	Contract string `json:"contract"`
	RPCURL   string `json:"rpc_url,omitempty"`
}

func (s *Server) chain(c echo.Context) error {
	if s.Chain == nil {
		return errLedgerOff
	}
	return c.JSON(http.StatusOK, s.Chain)
}
