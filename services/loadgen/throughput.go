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
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// throughputResult is one write-rate measurement.
type throughputResult struct {
	Name      string  `json:"name"`
	Clients   int     `json:"clients"`
	Writes    int     `json:"writes"`
	Errors    int     `json:"errors"`
	PerSecond float64 `json:"per_second"`
	Latency   spread  `json:"latency"`
}

func (b *bench) throughputAll(ctx context.Context) error {
	rs := b.c.replicas
	// Warm up connection pools and caches; not counted.
	if _, err := b.throughput(ctx, "warm-up", b.targets(rs), time.Second); err != nil {
		return err
	}
	one, err := b.throughput(ctx, "bbs via 1 replica", b.targets(rs[:1]), b.opts.writeTime)
	if err != nil {
		return err
	}
	all, err := b.throughput(ctx, fmt.Sprintf("bbs via %d replicas", len(rs)), b.targets(rs), b.opts.writeTime)
	if err != nil {
		return err
	}
	same, plain, err := b.pgbenchAll(ctx)
	if err != nil {
		return err
	}
	b.res.Throughput = []throughputResult{one, all, same, plain}
	b.printThroughput()
	return nil
}

// throughput runs opts.writers closed-loop writers for d against targets.
func (b *bench) throughput(ctx context.Context, name string, targets []string, d time.Duration) (throughputResult, error) {
	var (
		mu     sync.Mutex
		lats   []time.Duration
		errs   int
		first  error
		wg     sync.WaitGroup
		start  = time.Now()
		finish = start.Add(d)
	)
	for w := range b.opts.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			var firstErr error
			for i := w; time.Now().Before(finish); i++ {
				lat, err := b.w.create(ctx, targets[i%len(targets)])
				if err != nil {
					bad++
					firstErr = err
					continue
				}
				mine = append(mine, lat)
			}
			mu.Lock()
			lats = append(lats, mine...)
			errs += bad
			if first == nil {
				first = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if errs > 0 {
		fmt.Fprintf(b.out, "  %s: %d writes failed, first: %v\n", name, errs, first)
	}
	if ctx.Err() != nil {
		return throughputResult{}, ctx.Err()
	}
	return throughputResult{
		Name:      name,
		Clients:   b.opts.writers,
		Writes:    len(lats),
		Errors:    errs,
		PerSecond: float64(len(lats)) / elapsed.Seconds(),
		Latency:   spreadOfDurations(lats),
	}, nil
}

// sameSQL is what one create runs, statement for statement, as GORM and
// the store's hooks send it (see pkg/store/write.go and hooks.go).
const sameSQL = `BEGIN;
INSERT INTO topics (comment, token_hash, created_at, updated_at, deleted_at) VALUES ('bench comment', '\x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'::bytea, now(), now(), NULL) RETURNING id \gset
WITH bumped AS (UPDATE bbs_version SET v = v + 1 WHERE id = 1 RETURNING v) INSERT INTO topic_changes (version, kind, topic_id, comment, created_at, updated_at, committed_at) SELECT v, 'created', :id::bigint, 'bench comment', now(), now(), now() FROM bumped RETURNING version;
COMMIT;
`

const plainSQL = `INSERT INTO plain_insert (comment) VALUES ('bench comment');
`

// pgbenchAll runs pgbench in a database of its own with the board's
// schema, so its versions never reach the replicas.
func (b *bench) pgbenchAll(ctx context.Context) (same, plain throughputResult, err error) {
	if _, err := exec.LookPath(b.opts.pgbench); err != nil {
		return same, plain, fmt.Errorf("pgbench not found; install it: apt-get install -y postgresql-contrib (%w)", err)
	}
	dbURL, err := b.c.createDatabase(ctx, "bbs_pgbench_")
	if err != nil {
		return same, plain, err
	}
	if err := b.c.migrate(ctx, dbURL); err != nil {
		return same, plain, err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return same, plain, err
	}
	_, err = conn.Exec(ctx, "CREATE TABLE plain_insert (id bigserial PRIMARY KEY, comment text NOT NULL)")
	conn.Close(ctx)
	if err != nil {
		return same, plain, fmt.Errorf("create plain_insert: %w", err)
	}
	if same, err = b.pgbench(ctx, "pgbench, the same SQL as a create", "same", sameSQL, dbURL); err != nil {
		return same, plain, err
	}
	plain, err = b.pgbench(ctx, "pgbench, plain single-row insert", "plain", plainSQL, dbURL)
	return same, plain, err
}

var tpsRe = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench runs script with as many clients as the HTTP writers had, with
// prepared statements as GORM's pgx driver uses, and reads each
// transaction's latency from its log.
func (b *bench) pgbench(ctx context.Context, name, tag, script, dbURL string) (throughputResult, error) {
	dir := filepath.Join(b.c.dir, "pgbench-"+tag)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return throughputResult{}, err
	}
	file := filepath.Join(dir, "script.sql")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		return throughputResult{}, err
	}
	secs := max(1, int(b.opts.writeTime.Round(time.Second)/time.Second))
	cmd := exec.CommandContext(ctx, b.opts.pgbench, "-n", "-M", "prepared",
		"-c", strconv.Itoa(b.opts.writers), "-j", "2", "-T", strconv.Itoa(secs),
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
	return throughputResult{Name: name, Clients: b.opts.writers, Writes: len(lats), PerSecond: tps, Latency: spreadOfMicros(lats)}, nil
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
