package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
)

// Config is everything the server can be told. Every flag can also come from
// the environment variable named beside it; a flag given on the command line
// wins over the environment.
type Config struct {
	Addr        string // RENDERTRUST_ADDR
	DataDir     string // RENDERTRUST_DATA_DIR
	Dev         bool   // RENDERTRUST_DEV
	DatabaseURL string // DATABASE_URL
}

// envNames maps each flag to its environment variable.
var envNames = map[string]string{
	"addr":         "RENDERTRUST_ADDR",
	"data-dir":     "RENDERTRUST_DATA_DIR",
	"dev":          "RENDERTRUST_DEV",
	"database-url": "DATABASE_URL",
}

func (c *Config) bindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "address to serve the API on")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "directory for the embedded database and chain")
	fs.BoolVar(&c.Dev, "dev", false, "development mode: embedded chain, dev payments, a local node")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL connection string (default: embedded SQLite in the data dir)")
}

// applyEnv fills every flag not set on the command line from its environment variable.
func applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		name, ok := envNames[f.Name]
		if !ok || f.Changed || err != nil {
			return
		}
		if v, set := os.LookupEnv(name); set {
			err = fs.Set(f.Name, v)
		}
	})
	return err
}

// eventsPath is the embedded event store's file.
func (c *Config) eventsPath() string { return filepath.Join(c.DataDir, "events.db") }
