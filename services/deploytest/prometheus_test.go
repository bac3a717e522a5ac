package deploytest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/testenv"
	"sigs.k8s.io/yaml"
)

const prometheusHelp = "Prometheus is needed (Debian's package): apt-get install -y prometheus"

// observability is where the dashboard, the alerts and the PodMonitor live.
func observability(t testing.TB) string { return filepath.Join(repoRoot(t), "deploy", "observability") }

// dashboardExprs is every query of every panel of the Grafana dashboard,
// rows' nested panels included, with the panel's title.
func dashboardExprs(t testing.TB) [][2]string {
	t.Helper()
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var dash struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(observability(t), "dashboard.json"))), &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	var out [][2]string
	var walk func([]json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("dashboard.json panel: %v", err)
			}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("dashboard panel %q has a target without expr", p.Title)
					continue
				}
				out = append(out, [2]string{p.Title, tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	return out
}

// alertRules is every rule of alerts.yaml: name and expr.
func alertRules(t testing.TB) [][2]string {
	t.Helper()
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(observability(t), "alerts.yaml"))), &f); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	var out [][2]string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, [2]string{r.Alert, r.Expr})
		}
	}
	return out
}

// selectorRE finds the series selectors of an expression: a metric name
// of ours (or Prometheus's `up`, or the Go and process collectors'), with
// its label matchers if any. Function names, label names in by (...) and
// keywords never start that way.
var selectorRE = regexp.MustCompile(`\b((?:bbs|go|process)_[a-zA-Z0-9_:]*|up)\b(\{[^}]*\})?`)

// matcherRE finds the label names of a selector's matchers.
var matcherRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)

// checkSelector reports whether a selector matches series. One whose
// matchers pick values absent while all is well (result="error" in an
// alert) must at least name an existing metric with every label it
// matches on: a typo in a metric or label name never passes. It returns
// a problem, or "" with a note when only the names could be checked.
func checkSelector(prom, sel string) (problem, note string) {
	n, err := promQuery(prom, sel)
	switch {
	case err != nil:
		return fmt.Sprintf("%s: refused: %v", sel, err), ""
	case n > 0:
		return "", ""
	}
	name, matchers, _ := strings.Cut(sel, "{")
	if matchers == "" {
		return fmt.Sprintf("%s: no series", sel), ""
	}
	if n, err := promQuery(prom, name); err != nil || n == 0 {
		return fmt.Sprintf("%s: no series of %s (%v)", sel, name, err), ""
	}
	for _, m := range matcherRE.FindAllStringSubmatch(matchers, -1) {
		if n, err := promQuery(prom, fmt.Sprintf(`%s{%s!=""}`, name, m[1])); err != nil || n == 0 {
			return fmt.Sprintf("%s: %s has no label %s (%v)", sel, name, m[1], err), ""
		}
	}
	return "", sel + ": no series now; its metric and label names exist"
}

func selectors(expr string) []string {
	var out []string
	for _, m := range selectorRE.FindAllStringSubmatch(expr, -1) {
		if !slices.Contains(out, m[0]) {
			out = append(out, m[0])
		}
	}
	return out
}

// grafanaVars puts values in for Grafana's variables, as Grafana does
// before it sends a query.
func grafanaVars(expr string) string {
	return strings.NewReplacer("$__rate_interval", "1m", "${__rate_interval}", "1m", "$__interval", "15s", "$__range", "5m").Replace(expr)
}

// promQuery evaluates expr now; it returns the number of series (or
// samples) in the result, or an error for a query Prometheus refuses.
func promQuery(base, expr string) (int, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &out); err != nil {
		return 0, fmt.Errorf("%d %q: %w", resp.StatusCode, body, err)
	}
	if out.Status != "success" {
		return 0, fmt.Errorf("%s", out.Error)
	}
	if out.Data.ResultType == "scalar" {
		return 1, nil
	}
	return len(out.Data.Result), nil
}

// TestPrometheusRulesCheck: promtool accepts the alerting rules.
func TestPrometheusRulesCheck(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found: %v\n%s", err, prometheusHelp)
	}
	out, err := exec.Command(promtool, "check", "rules", filepath.Join(observability(t), "alerts.yaml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if len(alertRules(t)) < 5 {
		t.Errorf("alerts.yaml holds %d rules, want the five the operators need at least", len(alertRules(t)))
	}
}

// TestPrometheusEvaluatesDashboardAndAlerts runs Debian's real Prometheus
// scraping three real replicas through a small load (posts on each, open
// streams, refused requests, one stream refused with 503), then evaluates
// through its HTTP API every query of the Grafana dashboard and every
// alert rule's expression:
//
//   - each dashboard query must return data;
//   - each series selector in a dashboard query or an alert rule must
//     match series by itself (an alert's whole expression is empty while
//     its condition is false, so it proves nothing about the names in it):
//     a metric name or label value misspelled anywhere fails the test;
//   - Prometheus loaded the rules file and evaluates every rule without
//     error.
func TestPrometheusEvaluatesDashboardAndAlerts(t *testing.T) {
	prometheus, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus not found: %v\n%s", err, prometheusHelp)
	}
	dashboard, alerts := dashboardExprs(t), alertRules(t)

	dbURL := testenv.PostgresURL(t)
	redisURL := testenv.RedisURL(t)
	base := map[string]string{
		"DATABASE_URL":  dbURL,
		"REDIS_URL":     redisURL,
		"REDIS_PREFIX":  testenv.RedisPrefix(t, redisURL),
		"LOG_LEVEL":     "warn",
		"VERSION_CHECK": "1s",
		"WRITE_RATE":    "0",
		"STREAM_RATE":   "0",
		"DRAIN_DELAY":   "0s",
		// One replica holds at most two streams: the third gets a 503,
		// the 5xx the error panels and alert need to see.
		"MAX_STREAMS": "2",
	}
	testenv.Migrate(t, testenv.BBS(t), dbURL)
	replicas := startReplicas(t, 3, base)
	var targets []string
	for _, r := range replicas {
		targets = append(targets, r.Internal)
	}

	prom := startPrometheus(t, prometheus, targets)
	testenv.Eventually(t, 30*time.Second, func() error {
		if n, err := promQuery(prom, `up{job="bbs"} == 1`); err != nil || n != 3 {
			return fmt.Errorf("Prometheus scraping the three replicas: %d up, %v", n, err)
		}
		return nil
	})

	// The load: two streams on each replica (a third refused), five posts
	// on each, and refused requests.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, r := range replicas {
		for range 2 {
			holdStream(t, ctx, "http://"+r.Addr)
		}
		resp, err := http.Get("http://" + r.Addr + "/api/topics/stream")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s: third stream answered %d, want 503 (MAX_STREAMS=2)", r.ID, resp.StatusCode)
		}
	}
	for i := range 15 {
		r := replicas[i%3]
		resp, err := http.Post("http://"+r.Addr+"/api/topics", "application/json", strings.NewReader(fmt.Sprintf(`{"comment":"prometheus %d"}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("post on %s: %d", r.ID, resp.StatusCode)
		}
	}
	for _, r := range replicas {
		for _, path := range []string{"/api/topics?limit=0", "/no/such/route", "/api/topics"} {
			resp, err := http.Get("http://" + r.Addr + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		req, _ := http.NewRequest("DELETE", "http://"+r.Addr+"/api/topics/1", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			resp, err := http.Get(prom + "/api/v1/query?query=" + url.QueryEscape(`bbs_delivery_lag_seconds_count`))
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Logf("bbs_delivery_lag_seconds_count: %s", b)
			}
		}
	})
	// Every replica is at the last version and has timed deliveries (its
	// own writes at least; notices too, unless a version check brought
	// them from the change log first), and Prometheus has scraped that.
	testenv.Eventually(t, 30*time.Second, func() error {
		at, err := promQuery(prom, `bbs_version{job="bbs"} == 15`)
		timed, err2 := promQuery(prom, `sum by (instance) (bbs_delivery_lag_seconds_count{job="bbs"}) >= 5`)
		if err != nil || err2 != nil || at != 3 || timed != 3 {
			return fmt.Errorf("Prometheus seeing every replica at version 15, with deliveries timed: %d at 15 (%v), %d timed (%v)", at, err, timed, err2)
		}
		return nil
	})
	// A few more scrapes, so rate() over the load has two samples or more.
	time.Sleep(3 * time.Second)

	var problems, notes []string
	queries, selectorCount := 0, 0
	check := func(what, expr string, wantData bool) {
		queries++
		n, err := promQuery(prom, expr)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: %s: refused: %v", what, expr, err))
		case wantData && n == 0:
			problems = append(problems, fmt.Sprintf("%s: %s: no data", what, expr))
		}
	}
	checkSelectors := func(what, expr string) {
		sels := selectors(expr)
		if len(sels) == 0 {
			problems = append(problems, fmt.Sprintf("%s: no metric selector found in %q", what, expr))
		}
		for _, sel := range sels {
			selectorCount++
			problem, note := checkSelector(prom, sel)
			if problem != "" {
				problems = append(problems, what+": "+problem)
			}
			if note != "" {
				notes = append(notes, what+": "+note)
			}
		}
	}
	for _, d := range dashboard {
		expr := grafanaVars(d[1])
		check("dashboard panel "+d[0], expr, true)
		checkSelectors("dashboard panel "+d[0], expr)
	}
	for _, a := range alerts {
		check("alert "+a[0], a[1], false)
		checkSelectors("alert "+a[0], a[1])
	}
	t.Logf("%d dashboard queries evaluated, each with data; %d alert expressions evaluated; %d series selectors checked", len(dashboard), len(alerts), selectorCount)
	for _, n := range notes {
		t.Log(n)
	}
	for _, p := range problems {
		t.Error(p)
	}

	// The check can fail: misspelled names are caught.
	for _, typo := range []string{"bbs_streams_opn", `bbs_redis_command_duration_seconds_count{reslt="error"}`, `bbs_dependency_up{dependency="redis", instanse="x"}`} {
		if problem, _ := checkSelector(prom, typo); problem == "" {
			t.Errorf("selector %s passed the check: typos would not be caught", typo)
		}
	}

	// Prometheus itself loaded the rules and evaluates each without error.
	testenv.Eventually(t, 20*time.Second, func() error {
		rules, err := promRules(prom)
		if err != nil || len(rules) != len(alerts) {
			return fmt.Errorf("every rule evaluated: %d of %d rules (%v)", len(rules), len(alerts), err)
		}
		for _, r := range rules {
			if r.Health != "ok" {
				return fmt.Errorf("every rule evaluated: %+v", r)
			}
		}
		return nil
	})
	rules, _ := promRules(prom)
	for _, r := range rules {
		if r.Health != "ok" {
			t.Errorf("rule %s: health %s: %s", r.Name, r.Health, r.LastError)
		}
		// A healthy cluster sets nothing off (rules with a `for` cannot
		// fire this soon; one without, such as the flapping rule, could).
		switch r.State {
		case "firing":
			t.Errorf("alert %s fires on a healthy cluster", r.Name)
		case "pending":
			t.Logf("alert %s pending (the load's refused streams are 5xx)", r.Name)
		}
	}
}

type promRule struct {
	Name      string `json:"name"`
	Health    string `json:"health"`
	State     string `json:"state"` // inactive, pending or firing
	LastError string `json:"lastError"`
}

// promRules lists the rules Prometheus loaded, with their health.
func promRules(base string) ([]promRule, error) {
	resp, err := http.Get(base + "/api/v1/rules")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Data struct {
			Groups []struct {
				Rules []promRule `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	var rules []promRule
	for _, g := range out.Data.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules, nil
}

// startPrometheus runs prometheus scraping targets every second, with the
// alerting rules loaded, into a temporary directory; it returns its base URL.
func startPrometheus(t *testing.T, bin string, targets []string) string {
	t.Helper()
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = fmt.Sprintf("%q", tg)
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: bbs
    static_configs:
      - targets: [%s]
`, filepath.Join(observability(t), "alerts.yaml"), strings.Join(quoted, ", "))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	writeFile(t, cfgPath, config)
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	logPath := filepath.Join(dir, "prometheus.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("prometheus log (last 20):\n%s", strings.Join(lines[max(0, len(lines)-20):], "\n"))
		}
	})
	base := "http://" + addr
	testenv.Eventually(t, 30*time.Second, func() error {
		select {
		case err := <-done:
			done <- err
			b, _ := os.ReadFile(logPath)
			t.Fatalf("prometheus exited: %v\n%s", err, b)
		default:
		}
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return fmt.Errorf("prometheus ready: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("prometheus ready: /-/ready answers %d", resp.StatusCode)
		}
		return nil
	})
	return base
}

// holdStream keeps a stream open until ctx ends, reading what it sends.
func holdStream(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/topics/stream", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("stream on %s: %d", base, resp.StatusCode)
	}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
		}
	}()
}

// TestPodMonitorMatchesDeployment: the PodMonitor scrapes the container
// port of the internal listener (the one INTERNAL_ADDR listens on, never
// the public one) of the pods the Deployment makes, in every overlay.
func TestPodMonitorMatchesDeployment(t *testing.T) {
	var pm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			PodMetricsEndpoints []struct {
				Port     string `json:"port"`
				Path     string `json:"path"`
				Interval string `json:"interval"`
			} `json:"podMetricsEndpoints"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict([]byte(readFile(t, filepath.Join(observability(t), "podmonitor.yaml"))), &pm); err != nil {
		t.Fatalf("podmonitor.yaml: %v", err)
	}
	if pm.APIVersion != "monitoring.coreos.com/v1" || pm.Kind != "PodMonitor" || len(pm.Spec.PodMetricsEndpoints) != 1 {
		t.Fatalf("podmonitor.yaml: %s %s with %d endpoints, want one monitoring.coreos.com/v1 PodMonitor endpoint", pm.APIVersion, pm.Kind, len(pm.Spec.PodMetricsEndpoints))
	}
	ep := pm.Spec.PodMetricsEndpoints[0]
	for _, overlay := range []string{"dev", "prod"} {
		p := findBBS(t, kustomize(t, "overlays/"+overlay))
		for k, v := range pm.Spec.Selector.MatchLabels {
			if p.d.Spec.Template.Labels[k] != v {
				t.Errorf("%s: the PodMonitor selects %s=%s; the bbs pods are labelled %v", overlay, k, v, p.d.Spec.Template.Labels)
			}
		}
		internal := "9090"
		if a, ok := p.config["INTERNAL_ADDR"]; ok {
			internal = a[strings.LastIndex(a, ":")+1:]
		}
		found := false
		for _, cp := range p.main.Ports {
			if cp.Name == ep.Port {
				found = true
				if fmt.Sprint(cp.ContainerPort) != internal {
					t.Errorf("%s: the PodMonitor scrapes port %s = %d, but INTERNAL_ADDR listens on %s", overlay, ep.Port, cp.ContainerPort, internal)
				}
			}
		}
		if !found {
			t.Errorf("%s: the PodMonitor scrapes port %q, which the bbs container does not name", overlay, ep.Port)
		}
	}
	if ep.Path != "/metrics" {
		t.Errorf("PodMonitor path %q, want /metrics", ep.Path)
	}
}
