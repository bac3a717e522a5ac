package api

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	lb := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	two := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name    string
		peer    string
		xff     []string // one entry per header line
		trusted []netip.Prefix
		want    string
	}{
		{"no proxies: the peer", "192.0.2.1:5000", nil, nil, "192.0.2.1"},
		{"no proxies: forwarded-for ignored", "192.0.2.1:5000", []string{"198.51.100.7"}, nil, "192.0.2.1"},
		{"untrusted peer: forwarded-for ignored", "192.0.2.1:5000", []string{"198.51.100.7"}, lb, "192.0.2.1"},
		{"trusted peer without header: the peer", "10.1.2.3:5000", nil, lb, "10.1.2.3"},
		{"trusted peer: rightmost entry", "10.1.2.3:5000", []string{"198.51.100.7"}, lb, "198.51.100.7"},
		{"client-written entries left of it are not believed", "10.1.2.3:5000", []string{"203.0.113.9, 198.51.100.7"}, lb, "198.51.100.7"},
		{"trusted hops skipped", "10.1.2.3:5000", []string{"203.0.113.9, 198.51.100.7, 10.9.9.9, 10.8.8.8"}, lb, "198.51.100.7"},
		{"several header lines are one chain", "10.1.2.3:5000", []string{"203.0.113.9, 198.51.100.7", "10.9.9.9"}, lb, "198.51.100.7"},
		{"every hop trusted: the leftmost", "10.1.2.3:5000", []string{"10.5.5.5, 10.9.9.9"}, lb, "10.5.5.5"},
		{"malformed rightmost: the peer", "10.1.2.3:5000", []string{"198.51.100.7, bogus"}, lb, "10.1.2.3"},
		{"malformed after a trusted hop: that hop", "10.1.2.3:5000", []string{"198.51.100.7, nonsense, 10.9.9.9"}, lb, "10.9.9.9"},
		{"empty entry is malformed", "10.1.2.3:5000", []string{"198.51.100.7,,"}, lb, "10.1.2.3"},
		{"empty header: the peer", "10.1.2.3:5000", []string{""}, lb, "10.1.2.3"},
		{"spaces trimmed", "10.1.2.3:5000", []string{"  198.51.100.7  "}, lb, "198.51.100.7"},
		{"entry with a port", "10.1.2.3:5000", []string{"198.51.100.7:4711"}, lb, "198.51.100.7"},
		{"IPv6 entry", "10.1.2.3:5000", []string{"2001:db8::7"}, lb, "2001:db8::7"},
		{"bracketed IPv6 entry with a port", "10.1.2.3:5000", []string{"[2001:db8::7]:4711"}, lb, "2001:db8::7"},
		{"bracketed IPv6 without a port is malformed", "10.1.2.3:5000", []string{"[2001:db8::7]"}, lb, "10.1.2.3"},
		{"IPv6 peer and trusted IPv6 hop", "[2001:db8:ffff::1]:443", []string{"192.0.2.44, 2001:db8:ffff::2"}, two, "192.0.2.44"},
		{"IPv4 peer on a dual-stack socket is unmapped", "[::ffff:10.1.2.3]:5000", []string{"198.51.100.7"}, lb, "198.51.100.7"},
		{"mapped entry is unmapped", "10.1.2.3:5000", []string{"::ffff:198.51.100.7"}, lb, "198.51.100.7"},
		{"mapped trusted hop is skipped", "10.1.2.3:5000", []string{"198.51.100.7, ::ffff:10.9.9.9"}, lb, "198.51.100.7"},
		{"zone dropped", "[fe80::1%eth0]:5000", nil, nil, "fe80::1"},
		{"peer without a port", "192.0.2.1", nil, nil, "192.0.2.1"},
		{"not an IP peer: invalid", "@", []string{"198.51.100.7"}, lb, "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.peer, Header: http.Header{}}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientIP(r, tt.trusted).String(); got != tt.want {
				t.Errorf("clientIP = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct {
		addr netip.Addr
		want string
	}{
		{netip.MustParseAddr("192.0.2.1"), "192.0.2.1"},
		{netip.MustParseAddr("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64"},
		{netip.MustParseAddr("2001:db8:1:2:ffff::1"), "2001:db8:1:2::/64"}, // same subscriber
		{netip.Addr{}, "unknown"},
	}
	for _, tt := range tests {
		if got := clientKey(tt.addr); got != tt.want {
			t.Errorf("clientKey(%v) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestClientStreams(t *testing.T) {
	var cs clientStreams
	for i := range 2 {
		if !cs.acquire("a", 2) {
			t.Fatalf("stream %d under the limit refused", i+1)
		}
	}
	if cs.acquire("a", 2) {
		t.Fatal("third stream allowed with a limit of 2")
	}
	if !cs.acquire("b", 2) {
		t.Fatal("another client refused")
	}
	cs.release("a")
	if !cs.acquire("a", 2) {
		t.Fatal("a stream refused after one closed")
	}
	cs.release("a")
	cs.release("a")
	cs.release("b")
	if len(cs.n) != 0 {
		t.Fatalf("clients with no streams are still counted: %v", cs.n)
	}
}
