package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// sameSQL is what one create runs, statement for statement, as GORM and
// the store's hooks send it (see pkg/store/write.go and hooks.go).
const sameSQL = `BEGIN;
INSERT INTO topics (comment, token_hash, created_at, updated_at, deleted_at) VALUES ('bench comment', '\x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'::bytea, now(), now(), NULL) RETURNING id \gset
WITH bumped AS (UPDATE bbs_version SET v = v + 1 WHERE id = 1 RETURNING v) INSERT INTO topic_changes (version, kind, topic_id, comment, created_at, updated_at, committed_at) SELECT v, 'created', :id::bigint, 'bench comment', now(), now(), now() FROM bumped RETURNING version;
COMMIT;
`

const plainSQL = `INSERT INTO plain_insert (comment) VALUES ('bench comment');
`

// batchedSQL is what a batch of k creates runs (pkg/store/batch.go and
// versions.go): one INSERT of the k topics, one bump by k with the k
// change-log entries, one COMMIT.
func batchedSQL(k int) string {
	var rows, log strings.Builder
	for i := 1; i <= k; i++ {
		if i > 1 {
			rows.WriteString(", ")
			log.WriteString(", ")
		}
		rows.WriteString(`('bench comment', '\x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'::bytea, now(), now(), NULL)`)
		fmt.Fprintf(&log, "(%d::bigint, 'created'::text, :id::bigint - %d, 'bench comment'::text, now(), now(), %d::bigint)", i, k-i, i)
	}
	return fmt.Sprintf(`BEGIN;
WITH ins AS (INSERT INTO topics (comment, token_hash, created_at, updated_at, deleted_at) VALUES %s RETURNING id) SELECT max(id) AS id FROM ins \gset
WITH bumped AS (UPDATE bbs_version SET v = v + %d, stamp = 1 WHERE id = 1 RETURNING v) INSERT INTO topic_changes (version, kind, topic_id, comment, created_at, updated_at, stamp) SELECT bumped.v - %d + x.ord, x.kind, x.topic_id, x.comment, x.created_at, x.updated_at, x.stamp FROM bumped, (VALUES %s) AS x(ord, kind, topic_id, comment, created_at, updated_at, stamp) RETURNING version;
COMMIT;
`, rows.String(), k, k, log.String())
}

// maxPgbenchClients caps pgbench's connections: Postgres's default
// max_connections is 100, and the replicas' pools keep up to 60 of them
// open. Past a few dozen clients a single-row insert's rate no longer
// grows on 2 cores anyway.
const maxPgbenchClients = 32

// pgbenchAll runs pgbench in a database of its own with the board's
// schema, so its versions never reach the replicas: for each writer count,
// the old one-change-per-transaction SQL, the batched SQL at the mean
// batch size bbs reached with that many writers through every replica,
// and a plain single-row insert.
func (b *bench) pgbenchAll(ctx context.Context, batches map[int]float64) ([]throughputResult, error) {
	if _, err := exec.LookPath(b.opts.pgbench); err != nil {
		return nil, fmt.Errorf("pgbench not found; install it: apt-get install -y postgresql-contrib (%w)", err)
	}
	dbURL, err := b.c.createDatabase(ctx, "bbs_pgbench_")
	if err != nil {
		return nil, err
	}
	if err := b.c.migrate(ctx, dbURL); err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	_, err = conn.Exec(ctx, "CREATE TABLE plain_insert (id bigserial PRIMARY KEY, comment text NOT NULL)")
	conn.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("create plain_insert: %w", err)
	}
	var out []throughputResult
	for _, n := range b.opts.writers {
		type script struct {
			name, tag, sql string
			k              int
		}
		scripts := []script{{"pgbench, one create per transaction (the SQL before group commit)", "single", sameSQL, 1}}
		if k := int(batches[n] + 0.5); k >= 2 {
			scripts = append(scripts, script{fmt.Sprintf("pgbench, batches of %d creates (the SQL of a batch)", k), fmt.Sprintf("batch%d", k), batchedSQL(k), k})
		}
		scripts = append(scripts, script{"pgbench, plain single-row insert", "plain", plainSQL, 1})
		for _, s := range scripts {
			var rounds []throughputResult
			for range b.opts.rounds {
				r, err := b.pgbench(ctx, s.name, fmt.Sprintf("%s-%d", s.tag, n), s.sql, dbURL, min(n, maxPgbenchClients))
				if err != nil {
					return nil, err
				}
				r.PerSecond *= float64(s.k) // creates, not transactions
				rounds = append(rounds, r)
			}
			out = append(out, medianOf(rounds))
		}
	}
	return out, nil
}

var tpsRe = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench runs script with clients clients (as many as the HTTP writers), with
// prepared statements as GORM's pgx driver uses, and reads each
// transaction's latency from its log.
func (b *bench) pgbench(ctx context.Context, name, tag, script, dbURL string, clients int) (throughputResult, error) {
	dir := filepath.Join(b.c.dir, "pgbench-"+tag)
	_ = os.RemoveAll(dir) // the previous round's logs
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return throughputResult{}, err
	}
	file := filepath.Join(dir, "script.sql")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		return throughputResult{}, err
	}
	secs := max(1, int(b.opts.writeTime.Round(time.Second)/time.Second))
	cmd := exec.CommandContext(ctx, b.opts.pgbench, "-n", "-M", "prepared",
		"-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(2, clients)), "-T", strconv.Itoa(secs),
		"-l", "--log-prefix", filepath.Join(dir, "log"), "-f", file, dbURL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return throughputResult{}, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	m := tpsRe.FindSubmatch(out)
	if m == nil {
		return throughputResult{}, fmt.Errorf("pgbench: no tps in its output:\n%s", out)
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	lats, err := pgbenchLatencies(filepath.Join(dir, "log"))
	if err != nil {
		return throughputResult{}, err
	}
	return throughputResult{Name: name, Clients: clients, Writes: len(lats), PerSecond: tps, Latency: spreadOfMicros(lats)}, nil
}

// pgbenchLatencies reads the per-transaction logs (one per thread): the
// third field is the latency in microseconds.
func pgbenchLatencies(prefix string) ([]int32, error) {
	files, err := filepath.Glob(prefix + ".*")
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("pgbench wrote no log at %s.*", prefix)
	}
	var out []int32
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) < 3 {
				continue
			}
			if us, err := strconv.ParseInt(fs[2], 10, 32); err == nil {
				out = append(out, int32(us))
			}
		}
		f.Close()
	}
	return out, nil
}
