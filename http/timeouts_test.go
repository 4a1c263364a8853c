package http

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// serveTest serves s on a loopback port until the test ends.
func serveTest(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	return l.Addr().String()
}

// TestSlowBodyCut: a client that sends a request head announcing a body
// and then trickles nothing is cut off after the read timeout (slowloris),
// instead of holding its connection and goroutine for ever.
func TestSlowBodyCut(t *testing.T) {
	addr := serveTest(t, New(Config{ReadTimeout: time.Second}))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\":")
	conn.SetReadDeadline(time.Now().Add(45 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server still held the connection after %v", time.Since(start).Round(time.Second))
	}
}

// TestUploadMinimumRate: 1. an upload slower than the read timeout but
// above the minimum rate completes; 2. one that stalls is cut off once it
// falls below the rate.
func TestUploadMinimumRate(t *testing.T) {
	s := New(Config{ReadTimeout: 500 * time.Millisecond})
	s.echo.PUT("/test-upload", func(c echo.Context) error {
		n, err := io.Copy(io.Discard, c.Request().Body)
		if err != nil {
			return c.String(http.StatusBadRequest, err.Error())
		}
		return c.String(http.StatusOK, strconv.FormatInt(n, 10))
	}, minRate(time.Second, 1000))
	addr := serveTest(t, s)
	send := func(chunks int, pause time.Duration) (int, error) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "PUT /test-upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n")
		for range chunks {
			time.Sleep(pause)
			if _, err := conn.Write([]byte(strings.Repeat("y", 4000/chunks))); err != nil {
				return 0, err
			}
		}
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// 1. 4,000 bytes in 4 chunks 300 ms apart: 1.2 s, over the 0.5 s read timeout.
	if st, err := send(4, 300*time.Millisecond); st != 200 {
		t.Fatalf("step 1: a steady upload answered %d, %v; want 200", st, err)
	}
	// 2. then a stall: a client that sends nothing more is cut off.
	start := time.Now()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "PUT /test-upload HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\nyyyy")
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("step 2: the stalled upload still held its connection after %v: %v", time.Since(start).Round(time.Second), err)
	}
}
