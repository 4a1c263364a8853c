package esdb_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/rendertrust/rendertrust/eventstore"
	"github.com/rendertrust/rendertrust/eventstore/esdb"
	"github.com/rendertrust/rendertrust/eventstore/esdb/esdbtest"
	"github.com/rendertrust/rendertrust/eventstore/storetest"
)

// eventStoreURLEnv names a real EventStoreDB server to run the suite against
// instead of the in-process one, e.g. esdb://127.0.0.1:2113?tls=false.
const eventStoreURLEnv = "EVENTSTORE_URL"

// testPrefix is the stream prefix the suite's databases use; each database
// on a real server adds a random part so cases do not see each other.
const testPrefix = "storetest:"

// databases maps each database location NewDB returned to its in-process
// server and prefix, for Tamper.
var databases sync.Map // string → database

type database struct {
	server *esdbtest.Server
	prefix string
}

// Harness runs the contract suite through the real v4 client: against a
// fresh in-process server per database (a child process of the crash test
// reaches it over loopback TCP, as an application reaches its server), or,
// when EVENTSTORE_URL is set, against that server with a fresh stream prefix
// per database.
var Harness = storetest.Harness{
	NewDB: func(tb testing.TB) string {
		if base := os.Getenv(eventStoreURLEnv); base != "" {
			return withPrefix(base, testPrefix+uuid.NewString()[:8]+":")
		}
		srv := esdbtest.MustStart(tb)
		db := withPrefix(srv.URL(), testPrefix)
		databases.Store(db, database{server: srv, prefix: testPrefix})
		return db
	},
	Open: func(tb testing.TB, db string) eventstore.Store {
		s, err := esdb.Open(context.Background(), db)
		if err != nil {
			tb.Fatalf("open %s: %v", db, err)
		}
		return s
	},
	Tamper: func(tb testing.TB, db string, position uint64) {
		v, ok := databases.Load(db)
		if !ok {
			tb.Skip("EventStoreDB cannot alter a stored event; Tamper runs against the in-process server only")
		}
		d := v.(database)
		s, err := esdb.Open(context.Background(), db)
		if err != nil {
			tb.Fatal(err)
		}
		defer s.Close()
		events, err := s.ReadAll(context.Background(), position, 1)
		if err != nil || len(events) != 1 {
			tb.Fatalf("tamper: read %d: %v", position, err)
		}
		if err := d.server.Tamper(d.prefix+events[0].Stream, events[0].Version-1); err != nil {
			tb.Fatal(err)
		}
	},
}

// withPrefix adds the streamPrefix parameter to a connection string.
func withPrefix(conn, prefix string) string {
	sep := "?"
	if strings.Contains(conn, "?") {
		sep = "&"
	}
	return fmt.Sprintf("%s%sstreamPrefix=%s", conn, sep, url.QueryEscape(prefix))
}

func TestStore(t *testing.T) { storetest.Run(t, Harness) }

// BenchmarkStore measures appends and reads through the v4 client against
// the in-process server (or EVENTSTORE_URL): see README.md for what that
// does and does not say about EventStoreDB.
func BenchmarkStore(b *testing.B) { storetest.Bench(b, Harness) }
