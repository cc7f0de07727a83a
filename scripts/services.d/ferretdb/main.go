// Command ferretdb is a tiny wrapper around FerretDB's embeddable package,
// used by scripts/services to run a MongoDB-wire server backed by SQLite.
//
// The stock `go install github.com/FerretDB/FerretDB/cmd/ferretdb` binary
// panics at start because the module zip lacks build/version/version.txt;
// embedding the `ferretdb` package skips that check.
//
//	ferretdb -listen-addr 127.0.0.1:27017 -sqlite-url file:/abs/dir/
//
// It runs until SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	sqliteURL := flag.String("sqlite-url", "", "SQLite URI of the data directory, e.g. file:/abs/dir/ (required)")
	level := flag.String("log-level", "info", "log level: debug, info, warn, error")
	flag.Parse()

	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: bad -log-level: %v\n", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	if !strings.HasPrefix(*sqliteURL, "file:") || !strings.HasSuffix(*sqliteURL, "/") {
		logger.Error("-sqlite-url must look like file:/abs/dir/ (with the trailing slash)")
		os.Exit(2)
	}
	dir := strings.TrimPrefix(*sqliteURL, "file:")
	if i := strings.IndexByte(dir, '?'); i >= 0 {
		dir = dir[:i]
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		logger.Error("cannot create SQLite directory", "dir", dir, "err", err)
		os.Exit(1)
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: *sqliteURL,
	})
	if err != nil {
		logger.Error("cannot start FerretDB", "err", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	logger.Info("FerretDB listening", "uri", f.MongoDBURI(), "sqlite", *sqliteURL)
	if err := f.Run(ctx); err != nil {
		logger.Error("FerretDB stopped with an error", "err", err)
		os.Exit(1)
	}
	logger.Info("FerretDB stopped")
}
