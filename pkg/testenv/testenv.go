// Package testenv gives tests the real servers they run against: a
// throwaway Postgres database per test and a Redis key prefix per test, on
// the servers named by TEST_DATABASE_URL and TEST_REDIS_URL (default: the
// local ones). A missing server fails the test with the command that
// installs and starts it; nothing is skipped.
//
// It also runs bbs itself: BuildBBS builds the binary once per process and
// Replica runs one replica process, started, signalled and restarted on
// the ports it keeps. Those return errors rather than fail a test, so
// loadgen, which is no test, starts its replicas with them too; StartReplicas
// and the other functions that take a testing.TB are the tests' short way.
// Send is the one way tests make an HTTP request, and Eventually the one
// way they wait for a condition.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/redact"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

const (
	defaultPostgres = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	defaultRedis    = "redis://127.0.0.1:6379/0"

	postgresHelp = "start Postgres: apt-get install -y postgresql && pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start (or set TEST_DATABASE_URL)"
	redisHelp    = "start Redis: apt-get install -y redis-server && redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no (or set TEST_REDIS_URL)"
)

// Name returns a short random name for databases, prefixes and ids.
func Name(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// PostgresURL creates an empty database for this test and returns its URL.
// The database is dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = defaultPostgres
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("testenv: cannot reach Postgres at %s: %v\n%s", redact.URL(admin), err, postgresHelp)
	}
	defer conn.Close(context.Background())
	name := Name("bbs_test_")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("testenv: TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// RedisURL returns the URL of the shared test Redis after checking it answers.
func RedisURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TEST_REDIS_URL")
	if u == "" {
		u = defaultRedis
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("testenv: TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("testenv: cannot reach Redis at %s: %v\n%s", u, err, redisHelp)
	}
	return u
}

// RedisPrefix returns a key and channel prefix no other test uses, and
// deletes the keys under it when the test ends, the rate limiter's too
// (redis_rate puts "rate:" before the prefix). The braces make it a hash
// tag, as the default "{bbs}" is: every key in one Redis Cluster slot.
func RedisPrefix(t testing.TB, redisURL string) string {
	t.Helper()
	prefix := "{" + Name("bbstest:") + "}"
	t.Cleanup(func() {
		opt, err := redis.ParseURL(redisURL)
		if err != nil {
			return // a Redis Cluster of the test's own, gone with it
		}
		c := redis.NewClient(opt)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, pattern := range []string{prefix + "*", "rate:" + prefix + "*"} {
			iter := c.Scan(ctx, 0, pattern, 100).Iterator()
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
			if err := iter.Err(); err != nil {
				t.Errorf("testenv: delete Redis keys %s: %v", pattern, err)
			}
		}
	})
	return prefix
}

// Context returns a context that ends with the test or after d.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
