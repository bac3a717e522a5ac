package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/bbsboard/bbs/pkg/config"
	"github.com/bbsboard/bbs/pkg/store"
)

// migrate applies pending migrations and exits; several at once are safe.
func migrate(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stdout, nil))
	st, err := store.Open(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := st.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	log.Info("migrated", "applied", n)
	return nil
}
