package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/bbsboard/bbs/pkg/topic"
	"gorm.io/gorm"
)

//go:embed migrations
var migrations embed.FS

// migrateLock is the Postgres advisory lock key that serialises migrations
// started by several replicas (or Jobs) at once.
const migrateLock = 0x62627300 // "bbs\0"

type migration struct {
	version int
	name    string
	sql     string
}

func (s *Store) migrations() ([]migration, error) {
	dir := path.Join("migrations", s.dialect)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		b, err := migrations.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate applies the pending versioned migrations in one transaction and
// returns how many it applied. On Postgres an advisory lock taken first
// makes concurrent runs wait for each other; the second finds nothing to do.
// Both dialects have transactional DDL, so a failed migration leaves nothing.
func (s *Store) Migrate(ctx context.Context) (applied int, err error) {
	all, err := s.migrations()
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.dialect == "postgres" {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrateLock).Error; err != nil {
				return err
			}
		}
		if err := tx.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP)`).Error; err != nil {
			return err
		}
		var current int
		if err := tx.Raw("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Find(&current).Error; err != nil {
			return err
		}
		for _, m := range all {
			if m.version <= current {
				continue
			}
			if err := tx.Exec(m.sql).Error; err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if err := tx.Exec("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", m.version, m.name).Error; err != nil {
				return err
			}
			applied++
		}
		return nil
	})
	if err != nil {
		return 0, classify("migrate", err)
	}
	return applied, nil
}

// CheckSchema reports an error unless every migration this binary knows has
// been applied, so a replica never serves on a schema it does not expect.
// A database that does not answer is topic.ErrUnavailable: try again.
func (s *Store) CheckSchema(ctx context.Context) error {
	all, err := s.migrations()
	if err != nil {
		return err
	}
	want := all[len(all)-1].version
	var have int
	ctx, cancel := bounded(ctx)
	defer cancel()
	err = s.db.WithContext(ctx).Raw("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Find(&have).Error
	if err = classify("check schema", err); errors.Is(err, topic.ErrUnavailable) {
		return err // the database did not answer: nothing is known yet
	}
	if err != nil || have < want {
		return fmt.Errorf("database schema is at version %d, this binary needs %d: run `bbs migrate` (%v)", have, want, err)
	}
	return nil
}
