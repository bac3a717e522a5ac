package api

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientIP is the address of the client a request comes from: the TCP
// peer, unless the peer is one of the trusted proxies. Then the
// X-Forwarded-For chain is read from the right (each proxy appends the
// address it got the request from), skipping the trusted hops, and the
// first address not trusted is the client. Everything left of it was
// written by the client itself and could be anything, which is why an
// untrusted peer's X-Forwarded-For is never read at all. A malformed
// entry ends the walk at the last address a trusted hop vouched for.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := parseHop(r.RemoteAddr)
	if !isTrusted(peer, trusted) {
		return peer
	}
	hops := forwardedFor(r.Header)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseHop(hops[i])
		if !a.IsValid() {
			return client
		}
		client = a
		if !isTrusted(a, trusted) {
			return a
		}
	}
	// Every hop is trusted: the leftmost is as far as anyone can vouch.
	return client
}

// forwardedFor lists the X-Forwarded-For entries of every such header in
// order (a proxy may add its own header instead of appending to one).
func forwardedFor(h http.Header) []string {
	var hops []string
	for _, v := range h.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	return hops
}

// parseHop reads an address as RemoteAddr or X-Forwarded-For give it:
// "192.0.2.1", "2001:db8::1", "192.0.2.1:1234" or "[2001:db8::1]:1234".
// An IPv4 address seen through a dual-stack socket (::ffff:192.0.2.1) is
// unmapped and any zone dropped, so prefixes and keys match it. The zero
// Addr means malformed.
func parseHop(s string) netip.Addr {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone("")
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientKey is what limits count per: the address for IPv4, the /64 for
// IPv6, since one subscriber is routinely given a whole /64 and could
// otherwise take a fresh budget with every address in it.
func clientKey(a netip.Addr) string {
	switch {
	case !a.IsValid():
		// Not an IP peer (a Unix socket, say): one shared budget.
		return "unknown"
	case a.Is4():
		return a.String()
	default:
		return netip.PrefixFrom(a, 64).Masked().String()
	}
}
