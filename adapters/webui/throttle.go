package webui

import (
	"math"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// Failed logins are throttled per client: loginBurst failures at once,
// then one more each loginRefill. A client over it is answered 429 without
// its token being checked, so guessing tokens goes no faster than that.
const (
	loginBurst  = 10
	loginRefill = 6 * time.Second
	// maxLoginClients bounds the clients remembered; a client whose
	// failures have all refilled carries nothing and is forgotten first.
	maxLoginClients = 10000
	// refusalSummaryEvery is how often refused logins are summed up in the
	// log while they keep coming.
	refusalSummaryEvery = time.Minute
)

// loginThrottle counts failed logins per client.
type loginThrottle struct {
	mu      sync.Mutex
	clients map[string]*rate.Limiter
}

func newLoginThrottle() *loginThrottle {
	return &loginThrottle{clients: map[string]*rate.Limiter{}}
}

// clientOf is whom a login is counted against: the peer's IP address, an
// IPv6 one by its /64, the block one host usually holds. Behind a proxy
// every client is the proxy, which throttles them together.
func clientOf(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		return netip.PrefixFrom(ip, 64).Masked().String()
	}
	return ip.String()
}

// retryAfter is how long client must wait before its next login attempt;
// 0 when it may try now.
func (t *loginThrottle) retryAfter(client string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	lim, ok := t.clients[client]
	if !ok {
		return 0
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) * float64(loginRefill))
}

// failed counts a failed login of client.
func (t *loginThrottle) failed(client string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lim, ok := t.clients[client]
	if !ok {
		if len(t.clients) >= maxLoginClients {
			t.forget(now)
		}
		lim = rate.NewLimiter(rate.Every(loginRefill), loginBurst)
		t.clients[client] = lim
	}
	lim.AllowN(now, 1)
}

// forget drops the clients whose failures have all refilled, and when
// none has, any one: many clients at once are beyond what one address's
// throttle holds back anyway.
func (t *loginThrottle) forget(now time.Time) {
	for client, lim := range t.clients {
		if lim.TokensAt(now) >= loginBurst {
			delete(t.clients, client)
		}
	}
	for client := range t.clients {
		if len(t.clients) < maxLoginClients {
			return
		}
		delete(t.clients, client)
	}
}

// retryAfterSeconds is a wait as whole seconds, at least one.
func retryAfterSeconds(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}

// refusalLog writes the first refused login of a quiet spell at once and
// sums the rest up every refusalSummaryEvery while they keep coming, so a
// flood of bad tokens is a line a minute, not a line each. Tokens are
// never written.
type refusalLog struct {
	log   zerolog.Logger
	every time.Duration

	mu                 sync.Mutex
	spell              bool // refusals are being counted for the next summary
	refused, throttled int
	clients            map[string]bool
}

func newRefusalLog(log zerolog.Logger, every time.Duration) *refusalLog {
	return &refusalLog{log: log, every: every, clients: map[string]bool{}}
}

// note records one refused login of client: a token that is not valid,
// or (throttled) an attempt refused unchecked.
func (l *refusalLog) note(client string, throttled bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.spell {
		l.spell = true
		msg := "web login refused: the token is not valid"
		if throttled {
			msg = "web login refused: too many failed logins from this client"
		}
		l.log.Warn().Str("client", client).Msg(msg)
		time.AfterFunc(l.every, l.summarize)
		return
	}
	if throttled {
		l.throttled++
	} else {
		l.refused++
	}
	l.clients[client] = true
}

// summarize writes what was refused since the last line, or ends the
// spell when nothing was.
func (l *refusalLog) summarize() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refused+l.throttled == 0 {
		l.spell = false
		return
	}
	l.log.Warn().Int("refused", l.refused).Int("throttled", l.throttled).Int("clients", len(l.clients)).
		Dur("over", l.every).Msg("web logins refused since the last line")
	l.refused, l.throttled = 0, 0
	clear(l.clients)
	time.AfterFunc(l.every, l.summarize)
}
