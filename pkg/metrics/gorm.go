package metrics

import (
	"errors"
	"time"

	"gorm.io/gorm"
)

// startKey is where the timing callbacks keep a statement's start time
// in its instance settings (per statement, so concurrent ones never mix).
const startKey = "bbs:metrics:start"

// GormPlugin times every statement GORM sends into bbs_db_query_duration_seconds.
// It is registered from outside the store (db.Use), so the store's own
// code needs no knowledge of metrics. A statement that finds no row
// (gorm.ErrRecordNotFound) counts as ok: it answered.
func (m *Metrics) GormPlugin() gorm.Plugin { return gormPlugin{m} }

type gormPlugin struct{ m *Metrics }

func (gormPlugin) Name() string { return "bbs:metrics" }

func (p gormPlugin) Initialize(db *gorm.DB) error {
	start := func(tx *gorm.DB) { tx.InstanceSet(startKey, time.Now()) }
	done := func(op string) func(*gorm.DB) {
		// The label values are fixed per processor: look the child up once.
		ok := p.m.DBDuration.WithLabelValues(op, "ok")
		failed := p.m.DBDuration.WithLabelValues(op, "error")
		return func(tx *gorm.DB) {
			v, found := tx.InstanceGet(startKey)
			began, isTime := v.(time.Time)
			if !found || !isTime {
				return
			}
			h := ok
			if tx.Error != nil && !errors.Is(tx.Error, gorm.ErrRecordNotFound) {
				h = failed
			}
			h.Observe(time.Since(began).Seconds())
		}
	}
	cb := db.Callback()
	for _, step := range []struct {
		op  string
		reg func(name string, before, after func(*gorm.DB)) error
	}{
		{"create", func(n string, b, a func(*gorm.DB)) error {
			return errors.Join(cb.Create().Before("gorm:create").Register(n+":before", b), cb.Create().After("gorm:create").Register(n+":after", a))
		}},
		{"query", func(n string, b, a func(*gorm.DB)) error {
			return errors.Join(cb.Query().Before("gorm:query").Register(n+":before", b), cb.Query().After("gorm:query").Register(n+":after", a))
		}},
		{"update", func(n string, b, a func(*gorm.DB)) error {
			return errors.Join(cb.Update().Before("gorm:update").Register(n+":before", b), cb.Update().After("gorm:update").Register(n+":after", a))
		}},
		{"delete", func(n string, b, a func(*gorm.DB)) error {
			return errors.Join(cb.Delete().Before("gorm:delete").Register(n+":before", b), cb.Delete().After("gorm:delete").Register(n+":after", a))
		}},
		{"row", func(n string, b, a func(*gorm.DB)) error {
			return errors.Join(cb.Row().Before("gorm:row").Register(n+":before", b), cb.Row().After("gorm:row").Register(n+":after", a))
		}},
		{"raw", func(n string, b, a func(*gorm.DB)) error {
			return errors.Join(cb.Raw().Before("gorm:raw").Register(n+":before", b), cb.Raw().After("gorm:raw").Register(n+":after", a))
		}},
	} {
		if err := step.reg("bbs:metrics", start, done(step.op)); err != nil {
			return err
		}
	}
	return nil
}
