package filter

// maxAuthority bounds the :authority values looked up (a DNS name is at
// most 253 bytes, plus ":65535").
const maxAuthority = 260

// Lookup returns the cluster of the route for a destination address
// (destination.address, "ip:port") or, failing that, an :authority (any
// case, with or without port). It allocates nothing.
func (c *Compiled) Lookup(destination, authority string) (cluster string, ok bool) {
	r := c.lookup(destination, authority)
	if r == nil {
		return "", false
	}
	return r.cluster, true
}

func (c *Compiled) lookup(dest, authority string) *route {
	if dest != "" {
		if r := c.byVIP[dest]; r != nil {
			return r
		}
		if len(c.byIP) > 0 {
			if host, _, ok := splitPort(dest); ok {
				if len(host) > 1 && host[0] == '[' {
					host = host[1 : len(host)-1]
				}
				if r := c.byIP[host]; r != nil {
					return r
				}
			}
		}
	}
	if authority == "" || len(authority) > maxAuthority {
		return nil
	}
	var buf [maxAuthority]byte
	a := authority
	if hasUpper(a) {
		n := copy(buf[:], a)
		lower(buf[:n])
		return c.lookupHost(buf[:n], false)
	}
	if r := c.byHost[a]; r != nil {
		return r
	}
	n := copy(buf[:], a)
	return c.lookupHost(buf[:n], true)
}

// lookupHost looks up a lower-case authority: exactly, then without its port,
// then without a trailing dot. The map lookups with string(b) do not allocate.
func (c *Compiled) lookupHost(b []byte, exactTried bool) *route {
	if !exactTried {
		if r := c.byHost[string(b)]; r != nil {
			return r
		}
	}
	host, port, hasPort := splitPortBytes(b)
	if len(host) > 1 && host[len(host)-1] == '.' {
		host = host[:len(host)-1]
		if hasPort {
			// "name.:8080" → "name:8080"
			n := len(host)
			b = append(host[:n:n+len(port)+1], ':')
			b = append(b, port...)
			if r := c.byHost[string(b)]; r != nil {
				return r
			}
		}
	}
	if hasPort || len(host) != len(b) {
		return c.byHost[string(host)]
	}
	return nil
}

// splitPort splits "host:port" when port is all digits; IPv6 needs brackets.
func splitPort(s string) (host, port string, ok bool) {
	for i := len(s) - 1; i >= 0; i-- {
		ch := s[i]
		if ch == ':' {
			if i == len(s)-1 || (s[0] != '[' && containsColon(s[:i])) {
				return s, "", false
			}
			if s[0] == '[' && s[i-1] != ']' {
				return s, "", false
			}
			return s[:i], s[i+1:], true
		}
		if ch < '0' || ch > '9' {
			return s, "", false
		}
	}
	return s, "", false
}

func splitPortBytes(b []byte) (host, port []byte, ok bool) {
	for i := len(b) - 1; i >= 0; i-- {
		ch := b[i]
		if ch == ':' {
			if i == len(b)-1 || i == 0 || (b[0] != '[' && containsColonBytes(b[:i])) ||
				(b[0] == '[' && b[i-1] != ']') {
				return b, nil, false
			}
			return b[:i], b[i+1:], true
		}
		if ch < '0' || ch > '9' {
			return b, nil, false
		}
	}
	return b, nil, false
}

func containsColon(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return true
		}
	}
	return false
}

func containsColonBytes(b []byte) bool {
	for _, ch := range b {
		if ch == ':' {
			return true
		}
	}
	return false
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

func lower(b []byte) {
	for i, ch := range b {
		if ch >= 'A' && ch <= 'Z' {
			b[i] = ch + ('a' - 'A')
		}
	}
}
