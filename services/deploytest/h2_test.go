package deploytest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/bbsboard/bbs/pkg/wire"
)

// testHTTP2: nginx's HTTPS port, with the certificate tls-cert.sh made and
// its ca.pem trusted, speaks HTTP/2 to the client while the replicas behind
// it speak HTTP/1.1. A stream and a POST share one connection (what lets a
// browser hold any number of streams and still post), and the POST's event
// arrives on the stream as it happens.
func testHTTP2(t *testing.T, st *stack) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(readFile(t, st.CA))) {
		t.Fatalf("%s holds no certificate", st.CA)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	base := "https://" + st.TLS // 127.0.0.1, which the certificate names

	var conns []string
	trace := &httptrace.ClientTrace{GotConn: func(c httptrace.GotConnInfo) {
		conns = append(conns, c.Conn.LocalAddr().String())
	}}
	ctx, cancel := context.WithCancel(httptrace.WithClientTrace(context.Background(), trace))
	t.Cleanup(cancel)

	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/topics/stream", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET the stream over HTTPS: %v", err)
	}
	if resp.ProtoMajor != 2 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %s, %s %q, want HTTP/2 and an event stream", resp.Status, resp.Proto, resp.Header.Get("Content-Type"))
	}
	lines := make(chan line, 1024)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- line{time.Now(), sc.Text()}
		}
	}()
	waitLine(t, lines, "event: snapshot", 3*time.Second)

	comment := "over HTTP/2 " + time.Now().Format(time.RFC3339Nano)
	body, _ := json.Marshal(wire.CommentBody{Comment: comment})
	preq, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/topics", bytes.NewReader(body))
	preq.Header.Set("Content-Type", "application/json")
	posted := time.Now()
	presp, err := client.Do(preq)
	if err != nil {
		t.Fatalf("POST over HTTPS: %v", err)
	}
	presp.Body.Close()
	if presp.StatusCode != http.StatusCreated || presp.ProtoMajor != 2 {
		t.Fatalf("POST: %s, %s, want 201 over HTTP/2", presp.Status, presp.Proto)
	}
	waitLine(t, lines, "event: topic.created", 3*time.Second)
	data := waitLine(t, lines, "data:", time.Second)
	if !strings.Contains(data.text, comment) {
		t.Errorf("the stream's event %q is not the post %q", data.text, comment)
	}
	t.Logf("over HTTP/2 through nginx: the POST's event on the stream %v after it was sent", data.at.Sub(posted).Round(time.Millisecond))
	if len(conns) != 2 || conns[0] != conns[1] {
		t.Errorf("the stream and the POST used connections %v, want one shared", conns)
	}
}
