package imagetest

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
)

// Bounds that catch a regression (a wrong base image, a debug build, cgo),
// not targets: the figures themselves are logged.
const (
	maxImageBytes  = 64 << 20
	maxBinaryBytes = 48 << 20
)

// TestImage builds the image from the repository's Dockerfile, unchanged,
// with podman (OCI runtime runc, Docker format so HEALTHCHECK is kept, no
// registry: the bases are local), then runs it as compose and the
// Kubernetes Deployment do: uid 65532, read-only root, every capability
// dropped, no privilege escalation. `bbs migrate` runs to completion, three
// replicas serve one Postgres database and one Redis prefix, each passes
// the image's own HEALTHCHECK, and a topic posted on one replica reaches a
// stream opened on another.
func TestImage(t *testing.T) {
	start := time.Now()
	pm := newPodman(t)
	root := repoRoot(t)
	ctx := testenv.Context(t, 25*time.Minute)
	id := testenv.Name("")
	prefix := "bbs-imagetest-" + id
	image := "localhost/bbs-imagetest:" + id

	// The base images: made once, kept for the next run.
	phase := time.Now()
	bases := exec.CommandContext(ctx, "bash", filepath.Join(root, "services", "imagetest", "bases.sh"), goroot(t))
	if out, err := bases.CombinedOutput(); err != nil {
		t.Fatalf("making the base images: %v\n%s", err, lastLines(string(out), 40))
	} else {
		t.Logf("%s", strings.TrimSpace(string(out)))
	}
	t.Logf("base images ready in %v", time.Since(phase).Round(100*time.Millisecond))

	phase = time.Now()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := pm.run(ctx, "rmi", "--force", image); err != nil {
			t.Errorf("clean up: %v", err)
		}
	})
	// --layers=false: no intermediate images left behind per run (the
	// build argument VERSION differs each time, so they would pile up);
	// the Dockerfile's cache mounts keep modules and compiled packages,
	// which is what makes a second build fast.
	pm.must(ctx, "build", "--format", "docker", "--pull=never", "--network", "host", "--layers=false",
		"--build-arg", "VERSION=imagetest-"+id, "--build-arg", "REVISION="+id,
		"--tag", image, "--file", filepath.Join(root, "Dockerfile"), root)
	t.Logf("podman build in %v", time.Since(phase).Round(100*time.Millisecond))

	checkImageConfig(t, pm, ctx, image)
	checkBinary(t, pm, ctx, image, prefix+"-extract")

	// Version stamped from the build argument, and no shell to run anything
	// else with.
	if out := pm.must(ctx, "run", "--rm", "--network", "none", "--name", prefix+"-version", image, "version"); !strings.Contains(out, "imagetest-"+id) {
		t.Errorf("bbs version in the image = %q, want the VERSION build argument imagetest-%s", out, id)
	}
	// Refused for the right reason: the file is not there (not, say, a
	// container that could not start at all).
	if out, err := pm.run(ctx, "run", "--rm", "--network", "none", "--name", prefix+"-shell", "--entrypoint", "/bin/sh", image, "-c", "true"); err == nil {
		t.Errorf("the image runs /bin/sh (%q); the final stage must stay distroless", out)
	} else if !strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("running /bin/sh in the image failed, but not for want of it: %v", err)
	}
	t.Cleanup(func() { pm.removeContainers(prefix+"-version", prefix+"-shell") })

	dbURL := testenv.PostgresURL(t)
	redisURL := testenv.RedisURL(t)
	redisPrefix := testenv.RedisPrefix(t, redisURL)

	// What compose and the Deployment's securityContext ask for. The root
	// file system gets no tmpfs either (podman adds /tmp, /run and /var/tmp
	// by default; readOnlyRootFilesystem does not).
	hardened := []string{"--network", "host", "--read-only", "--read-only-tmpfs=false",
		"--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--user", "65532:65532"}

	phase = time.Now()
	migrate := prefix + "-migrate"
	t.Cleanup(func() { pm.removeContainers(migrate) })
	args := append([]string{"run", "--rm", "--name", migrate}, hardened...)
	args = append(args, "--env", "DATABASE_URL="+dbURL, image, "migrate")
	if out, err := pm.run(ctx, args...); err != nil {
		t.Fatalf("bbs migrate in the image: %v\n%s", err, out)
	}
	t.Logf("bbs migrate in %v", time.Since(phase).Round(100*time.Millisecond))

	phase = time.Now()
	type replica struct{ name, http, internal string }
	var replicas []replica
	for i := 1; i <= 3; i++ {
		r := replica{
			name:     fmt.Sprintf("%s-%d", prefix, i),
			http:     "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
			internal: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		}
		t.Cleanup(func() { pm.removeContainers(r.name) })
		args := append([]string{"run", "--detach", "--name", r.name}, hardened...)
		for _, kv := range []string{
			"DATABASE_URL=" + dbURL, "REDIS_URL=" + redisURL, "REDIS_PREFIX=" + redisPrefix,
			"HTTP_ADDR=" + r.http, "INTERNAL_ADDR=" + r.internal, "REPLICA_ID=" + r.name,
			"TRUSTED_PROXIES=none", "DRAIN_DELAY=0s", "LOG_LEVEL=info",
		} {
			args = append(args, "--env", kv)
		}
		pm.must(ctx, append(args, image)...)
		replicas = append(replicas, r)
	}
	for _, r := range replicas {
		waitReady(t, ctx, r.http)
		// The internal listener (INTERNAL_ADDR) serves metrics from inside
		// the read-only container too.
		if code, body := get(t, ctx, "http://"+r.internal+"/metrics"); code != http.StatusOK || !strings.Contains(body, "bbs_") {
			t.Errorf("%s: GET /metrics on INTERNAL_ADDR: %d, %d bytes without bbs_ metrics", r.name, code, len(body))
		}
		checkHardened(t, pm, ctx, r.name)
		// The image's own HEALTHCHECK (`/bbs healthcheck`, against HTTP_ADDR
		// from the container's environment), run by podman as Docker would.
		if out, err := pm.run(ctx, "healthcheck", "run", r.name); err != nil {
			t.Errorf("HEALTHCHECK of %s: %v %s", r.name, err, out)
		}
		if st := pm.must(ctx, "inspect", "--format", "{{.State.Health.Status}}", r.name); st != "healthy" {
			t.Errorf("%s health = %q after the HEALTHCHECK ran, want healthy", r.name, st)
		}
	}
	t.Logf("3 replicas ready and healthy in %v", time.Since(phase).Round(100*time.Millisecond))

	// A post on replica 1 reaches a stream on replica 3 (through Redis
	// pub/sub, between containers).
	comment := "posted in container 1, read in container 3: " + id
	events := openStream(t, ctx, replicas[2].http)
	if got := post(t, ctx, replicas[0].http, comment); got != replicas[0].name {
		t.Errorf("POST answered by X-Replica %q, want %q", got, replicas[0].name)
	}
	waitForPost(t, events, comment, replicas[0].name, replicas[2].name)

	// The engine stops a replica as compose and the kubelet do: SIGTERM to
	// PID 1 (bbs itself: no init, no shell), SIGKILL after the grace. It
	// must drain and exit 0 well within it: a binary that ignored SIGTERM as
	// PID 1 would be killed at the deadline instead (exit 137).
	phase = time.Now()
	pm.must(ctx, "stop", "--time", "35", replicas[1].name)
	if code := pm.must(ctx, "inspect", "--format", "{{.State.ExitCode}}", replicas[1].name); code != "0" {
		t.Errorf("%s exited %s after SIGTERM, want 0", replicas[1].name, code)
	}
	if took := time.Since(phase); took > 30*time.Second {
		t.Errorf("%s took %v to stop on SIGTERM", replicas[1].name, took)
	}
	t.Logf("%s stopped on SIGTERM (exit 0) in %v", replicas[1].name, time.Since(phase).Round(100*time.Millisecond))
	t.Logf("image-test took %v", time.Since(start).Round(time.Second))
}

// waitForPost reads the stream until the topic posted with comment
// arrives, or fails after 15 s.
func waitForPost(t *testing.T, events <-chan event, comment, from, to string) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the stream on %s ended before the post arrived", to)
			}
			if ev.name == "topic.created" && strings.Contains(ev.data, comment) {
				t.Logf("the post on %s reached the stream on %s", from, to)
				return
			}
		case <-deadline:
			t.Fatalf("the post on %s did not reach the stream on %s within 15s", from, to)
		}
	}
}

// checkImageConfig checks what the Dockerfile declares survived the build:
// the non-root user, the HEALTHCHECK (dropped unless --format docker) and
// the entrypoint; and logs the image's size.
func checkImageConfig(t *testing.T, pm *podman, ctx context.Context, image string) {
	t.Helper()
	var cfg []struct {
		Size   int64
		Config struct {
			User       string
			Entrypoint []string
		}
		// podman reports the HEALTHCHECK beside Config, not in it.
		Healthcheck *struct{ Test []string }
	}
	if err := json.Unmarshal([]byte(pm.must(ctx, "image", "inspect", image)), &cfg); err != nil || len(cfg) != 1 {
		t.Fatalf("podman image inspect %s: %v", image, err)
	}
	c := cfg[0]
	t.Logf("image size: %d bytes (%.1f MB)", c.Size, float64(c.Size)/1e6)
	if c.Size > maxImageBytes {
		t.Errorf("image is %d bytes, over %d: what grew?", c.Size, maxImageBytes)
	}
	if c.Config.User != "65532:65532" {
		t.Errorf("image USER %q, want 65532:65532", c.Config.User)
	}
	if strings.Join(c.Config.Entrypoint, " ") != "/bbs" {
		t.Errorf("image ENTRYPOINT %q, want [/bbs]", c.Config.Entrypoint)
	}
	if c.Healthcheck == nil || !strings.Contains(strings.Join(c.Healthcheck.Test, " "), "/bbs healthcheck") {
		t.Errorf("image HEALTHCHECK %+v, want CMD /bbs healthcheck (podman keeps it only with --format docker)", c.Healthcheck)
	}
}

// checkBinary copies /bbs out of the image and reads how it was built: the
// Makefile's tags, no cgo (it runs on a base without libc), trimmed paths.
func checkBinary(t *testing.T, pm *podman, ctx context.Context, image, name string) {
	t.Helper()
	t.Cleanup(func() { pm.removeContainers(name) })
	pm.must(ctx, "create", "--network", "none", "--name", name, image)
	bin := filepath.Join(t.TempDir(), "bbs")
	pm.must(ctx, "cp", name+":/bbs", bin)
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("binary size: %d bytes (%.1f MB)", fi.Size(), float64(fi.Size())/1e6)
	if fi.Size() > maxBinaryBytes {
		t.Errorf("/bbs is %d bytes, over %d", fi.Size(), maxBinaryBytes)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("build info of the image's /bbs: %v", err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for k, want := range map[string]string{"CGO_ENABLED": "0", "-tags": "nomsgpack", "-trimpath": "true"} {
		if settings[k] != want {
			t.Errorf("the image's /bbs was built with %s=%q, want %q", k, settings[k], want)
		}
	}
	for _, d := range info.Deps {
		if d.Path == "github.com/ugorji/go/codec" {
			t.Errorf("the image's /bbs links %s (gin's MessagePack codec; -tags nomsgpack drops it)", d.Path)
		}
	}
}

// checkHardened checks, from the host's view of the container's process,
// that it runs as 65532 with no capabilities and no way to gain privileges,
// and that podman made its root read-only.
func checkHardened(t *testing.T, pm *podman, ctx context.Context, name string) {
	t.Helper()
	pid := pm.must(ctx, "inspect", "--format", "{{.State.Pid}}", name)
	st := procStatus(t, pid, "Uid", "Gid", "CapEff", "CapPrm", "NoNewPrivs")
	want := map[string]string{
		"Uid": "65532 65532 65532 65532", "Gid": "65532 65532 65532 65532",
		"CapEff": "0000000000000000", "CapPrm": "0000000000000000", "NoNewPrivs": "1",
	}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("%s: process %s %s = %q, want %q", name, pid, k, st[k], v)
		}
	}
	if ro := pm.must(ctx, "inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", name); ro != "true" {
		t.Errorf("%s: ReadonlyRootfs = %s", name, ro)
	}
}

// waitReady polls a replica's public /readyz until it answers 200.
func waitReady(t *testing.T, ctx context.Context, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("replica on %s not ready within 30s: %s", addr, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// get fetches url and returns its status and body.
func get(t *testing.T, ctx context.Context, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// post creates a topic and returns the X-Replica that answered.
func post(t *testing.T, ctx context.Context, addr, comment string) string {
	t.Helper()
	req, err := testenv.Request{Method: http.MethodPost, URL: "http://" + addr + "/api/topics", JSON: map[string]string{"comment": comment}}.NewRequest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("POST /api/topics on %s: %v", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /api/topics on %s: %s, want 201", addr, resp.Status)
	}
	return resp.Header.Get("X-Replica")
}

type event struct{ name, data string }

// openStream opens the SSE stream on addr, waits for its snapshot, and
// delivers every later event; the channel closes when the stream ends.
func openStream(t *testing.T, ctx context.Context, addr string) <-chan event {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/topics/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /api/topics/stream on %s: %v", addr, err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/topics/stream on %s: %s", addr, resp.Status)
	}
	all := make(chan event, 64)
	go func() {
		defer close(all)
		sc := bufio.NewScanner(resp.Body)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					all <- ev
				}
				ev = event{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	select {
	case ev, ok := <-all:
		if !ok || ev.name != "snapshot" {
			t.Fatalf("stream on %s began with %+v, want a snapshot", addr, ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no snapshot on the stream on %s within 10s", addr)
	}
	return all
}
