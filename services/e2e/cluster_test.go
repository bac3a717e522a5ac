package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
	"github.com/jackc/pgx/v5"
)

// randomName returns prefix followed by random hex digits.
func randomName(prefix string) string { return testenv.Name(prefix) }

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// cluster is a set of bbs replicas on one database and one Redis prefix.
type cluster struct {
	bin      string
	env      []string
	dbURL    string
	replicas []*testenv.Replica
}

type clusterOptions struct {
	replicas int
	env      []string // more KEY=value settings for every replica
	// seed runs on the migrated database before any replica starts.
	seed func(ctx context.Context, db *pgx.Conn) error
}

func startCluster(t *testing.T, opts clusterOptions) *cluster {
	t.Helper()
	dbURL := testenv.PostgresURL(t)
	redisURL := testenv.RedisURL(t)
	c := &cluster{bin: testenv.BBS(t), dbURL: dbURL, env: []string{
		"DATABASE_URL=" + dbURL,
		"REDIS_URL=" + redisURL,
		"REDIS_PREFIX=" + testenv.RedisPrefix(t, redisURL),
		"WRITE_RATE=100000", // the tests write faster than people do
		"WRITE_BURST=1000",
		"SSE_RETRY=1s",       // reconnect quickly when a replica dies
		"SHUTDOWN_GRACE=3s",  // cleanup should not wait 25 s
		"DRAIN_JITTER=100ms", // nor 5 s
		"DRAIN_DELAY=0s",     // nor 5 more: no load balancer in front to leave
		"LOG_LEVEL=info",     // the log a failure report shows
		// Every browser and test client here is 127.0.0.1, reloading and
		// reconnecting far more often than a person (the page retries a
		// refused stream itself).
		"STREAM_RATE=0",
	}}
	c.env = append(c.env, opts.env...)
	testenv.Migrate(t, c.bin, dbURL)
	if opts.seed != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		db, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		err = opts.seed(ctx, db)
		db.Close(context.Background())
		if err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	specs := make([]testenv.ReplicaSpec, max(opts.replicas, 1))
	for i := range specs {
		specs[i] = c.spec(fmt.Sprintf("r%d", i+1))
	}
	c.replicas = testenv.StartReplicas(t, specs...)
	return c
}

// spec is how to run one more replica with the cluster's settings (env,
// which a test may extend first).
func (c *cluster) spec(id string) testenv.ReplicaSpec {
	return testenv.ReplicaSpec{ID: id, Bin: c.bin, Env: c.env}
}

// ---------------------------------------------------------------------
// The JSON API, as the tests use it to set up and check.

type apiTopic struct {
	ID        int64  `json:"id"`
	Comment   string `json:"comment"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

type apiList struct {
	Version int64      `json:"version"`
	Topics  []apiTopic `json:"topics"`
}

func apiDo(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	a := testenv.Do(t, testenv.Request{Method: method, URL: url, Token: token, JSON: body})
	return a.Status, a.Body
}

// postTopic creates a topic through base and returns it with its token.
func postTopic(t *testing.T, base, comment string) (apiTopic, string) {
	t.Helper()
	status, body := apiDo(t, http.MethodPost, base+"/api/topics", "", map[string]string{"comment": comment})
	if status != http.StatusCreated {
		t.Fatalf("POST /api/topics: %d %s", status, body)
	}
	var out struct {
		Topic apiTopic `json:"topic"`
		Token string   `json:"token"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Topic, out.Token
}

func listTopics(t *testing.T, base string) apiList {
	t.Helper()
	status, body := apiDo(t, http.MethodGet, base+"/api/topics", "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /api/topics: %d %s", status, body)
	}
	var out apiList
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
