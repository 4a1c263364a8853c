// Package pgtest gives tests their own PostgreSQL database on the server
// named by DATABASE_URL (make test starts a throwaway one), or a whole
// PostgreSQL cluster of their own that they can stop and start (Cluster).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// adminTimeout bounds creating and dropping a test database.
const adminTimeout = 30 * time.Second

// URL returns DATABASE_URL. Without it the test is skipped, except under
// CI=true, where a missing service is a failure, never a skip.
func URL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("DATABASE_URL is not set under CI=true: run the tests through make test")
		}
		tb.Skip("DATABASE_URL not set (make test starts PostgreSQL); skipping outside CI")
	}
	return u
}

// NewDatabase creates an empty database, drops it when tb ends, and returns
// its connection string.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	admin := URL(tb)
	name := "rt_test_" + randomHex(8)
	execSQL(tb, admin, "CREATE DATABASE "+name)
	tb.Cleanup(func() { execSQL(tb, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("parse DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func execSQL(tb testing.TB, dsn, sql string) {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect to %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// clusterTimeout bounds initdb and every start or stop of a Cluster.
const clusterTimeout = 2 * time.Minute

// Cluster is a throwaway PostgreSQL server of the test's own, which it can
// stop and start again: initdb and pg_ctl of the machine's newest
// PostgreSQL, run as the postgres user when the test runs as root, in a
// directory that user owns, on a free loopback port.
type Cluster struct {
	tb   testing.TB
	bin  string // PostgreSQL's bin directory
	dir  string // the cluster's directory: data/, the socket, the log
	port int
	asPG []string // the command prefix that runs as the postgres user
}

// NewCluster initialises and starts a cluster, stopped and removed when tb
// ends. Without PostgreSQL's server programs the test is skipped, except
// under CI=true, where it fails.
func NewCluster(tb testing.TB) *Cluster {
	tb.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		if os.Getenv("CI") == "true" {
			tb.Fatal("no PostgreSQL server programs (/usr/lib/postgresql/*/bin) under CI=true")
		}
		tb.Skip("no PostgreSQL server programs (/usr/lib/postgresql/*/bin); skipping outside CI")
	}
	slices.SortFunc(bins, func(a, b string) int { return majorOf(a) - majorOf(b) })
	c := &Cluster{tb: tb, bin: filepath.Dir(bins[len(bins)-1])}
	dir, err := os.MkdirTemp("", "rendertrust-pgcluster-")
	if err != nil {
		tb.Fatal(err)
	}
	c.dir = dir
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 { // PostgreSQL refuses to run as root
		c.asPG = []string{"runuser", "-u", "postgres", "--"}
		c.run("chown", "postgres:", dir)
	}
	c.port = freePort(tb)
	c.run(append(c.asPG, filepath.Join(c.bin, "initdb"), "-D", c.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-locale")...)
	c.Start()
	tb.Cleanup(func() { c.pgCtl("-m", "immediate", "stop") })
	return c
}

// URL is the connection string of the cluster's postgres database; it stays
// the same across restarts.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Start starts the stopped cluster on its port and waits until it accepts
// connections.
func (c *Cluster) Start() {
	c.tb.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200", c.port, c.dir)
	if err := c.pgCtl("-w", "-l", filepath.Join(c.dir, "log"), "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		c.tb.Fatalf("start PostgreSQL: %v\n%s", err, log)
	}
}

// Stop stops the cluster with a fast shutdown (open sessions are ended,
// their transactions rolled back) and waits until it is down.
func (c *Cluster) Stop() {
	c.tb.Helper()
	if err := c.pgCtl("-w", "-m", "fast", "stop"); err != nil {
		c.tb.Fatalf("stop PostgreSQL: %v", err)
	}
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) pgCtl(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	argv := append(slices.Clone(c.asPG), filepath.Join(c.bin, "pg_ctl"), "-D", c.data(), "-t", strconv.Itoa(int(clusterTimeout.Seconds())))
	out, err := exec.CommandContext(ctx, argv[0], append(argv[1:], args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %v: %w\n%s", args, err, out)
	}
	return nil
}

func (c *Cluster) run(argv ...string) {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
		c.tb.Fatalf("%v: %v\n%s", argv, err, out)
	}
}

// majorOf is the major version in a path /usr/lib/postgresql/<major>/bin/….
func majorOf(path string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return n
}

// freePort returns a loopback port nobody listens on right now.
func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
