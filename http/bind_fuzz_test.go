package http

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/rendertrust/rendertrust/domain"
)

// bindFuzzBodyMax is the body limit the fuzzed requests are read under.
const bindFuzzBodyMax = 4096

// FuzzBindJSON sends arbitrary bodies to bindJSON for a submission: each
// is bound or refused with an invalid or too_large error and a message,
// never a panic or an internal error.
func FuzzBindJSON(f *testing.F) {
	for _, s := range []string{`{"job_type":"render","payload_ref":"s3://b/k","priority":"high","gpu_required":true}`,
		`{"job_type":1}`, `{"payload":{"a":[1,2]}}`, `{}{}`, `{"job_type":"echo"} x`, ``, `[`, `{"gpu_required":"yes"}`, `null`} {
		f.Add([]byte(s))
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/jobs/dispatch", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		req.Body = http.MaxBytesReader(rec, req.Body, bindFuzzBodyMax)
		var v dispatchRequest
		err := bindJSON(e.NewContext(req, rec), &v)
		if err == nil {
			return
		}
		switch domain.ErrorCode(err) {
		case domain.CodeInvalid, domain.CodeTooLarge:
			if err.Error() == "" {
				t.Fatalf("%q: refused without a message", body)
			}
		default:
			t.Fatalf("%q: refused with %q: %v", body, domain.ErrorCode(err), err)
		}
	})
}
