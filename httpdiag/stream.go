package httpdiag

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lockdiag/lockdiag/diag"
	"github.com/lockdiag/lockdiag/lockreport"
)

// StreamVersion is the version of the stream's frame schema, sent in the
// hello frame.
const StreamVersion = 1

const (
	// writeWait bounds every write to a stream client.
	writeWait = 10 * time.Second
	// pongWait is how long a client may stay silent (no pong, no message)
	// before it is dropped.
	pongWait = 60 * time.Second
	// pingPeriod must be shorter than pongWait.
	pingPeriod = pongWait * 9 / 10
	// clientBuffer is how many events wait for one slow client before it
	// starts losing them.
	clientBuffer = 256
	// maxHelloSamples bounds the history in the hello frame.
	maxHelloSamples = 3000
)

// A Message is one frame of the stream, as JSON. Type says which fields
// are set:
//
//	hello      Version, Interval, Every, Signals, Rules, Timeline, Snapshots, Trace,
//	           NamedLocks, Inversions
//	sample     Sample (every Interval, or every Every-th)
//	breach     Breach: a rule was breached (Breach.Snapshot says whether a snapshot follows)
//	recovered  Breach: the rule cleared (Peak, Duration set)
//	snapshot   Snapshot, Links: a snapshot was stored
//	snapshot_skipped, snapshot_failed   Breach (if any), Reason
//	named_locks           NamedLocks: the named locks (package locks), the busiest 20, about once a second
//	lock_order_inversion  Inversion: the lock-order check found a potential deadlock
//
// NamedLocks use the schema's names (lock.id, lock.type, lock.wait.duration,
// lock.held.duration; durations in nanoseconds) and carry no stacks.
//
// Every frame carries Dropped: how many frames this client has lost so far
// because it read too slowly.
type Message struct {
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	Dropped uint64    `json:"dropped"`

	Version   int               `json:"version,omitempty"`
	Interval  string            `json:"interval,omitempty"`
	Every     int               `json:"every,omitempty"`
	Signals   []SignalInfo      `json:"signals,omitempty"`
	Rules     []diag.RuleStatus `json:"rules,omitempty"`
	Timeline  []diag.Sample     `json:"timeline,omitempty"`
	Snapshots []SnapshotLink    `json:"snapshots,omitempty"`
	Trace     string            `json:"trace,omitempty"`

	NamedLocks []lockreport.NamedLock     `json:"named_locks,omitempty"`
	Inversions []lockreport.LockInversion `json:"inversions,omitempty"`
	Inversion  *lockreport.LockInversion  `json:"inversion,omitempty"`

	Sample   *diag.Sample  `json:"sample,omitempty"`
	Breach   *diag.Breach  `json:"breach,omitempty"`
	Snapshot *SnapshotLink `json:"snapshot,omitempty"`
	Reason   string        `json:"reason,omitempty"`
}

// SignalInfo describes a signal in the hello frame.
type SignalInfo struct {
	Name string `json:"name"`
	Unit string `json:"unit,omitempty"`
	Help string `json:"help"`
}

// SnapshotLink is a snapshot with the paths to fetch it.
type SnapshotLink struct {
	diag.SnapshotInfo
	Report string `json:"report_url"`
	JSON   string `json:"json_url"`
	Zip    string `json:"zip_url"`
}

type snapshotURLs struct {
	Report string `json:"report_url"`
	JSON   string `json:"json_url"`
	Zip    string `json:"zip_url"`
}

// MarshalJSON writes the snapshot's fields and its URLs in one object
// (SnapshotInfo's own MarshalJSON would otherwise be promoted and leave
// the URLs out).
func (l SnapshotLink) MarshalJSON() ([]byte, error) {
	info, err := json.Marshal(l.SnapshotInfo)
	if err != nil {
		return nil, err
	}
	urls, err := json.Marshal(snapshotURLs{l.Report, l.JSON, l.Zip})
	if err != nil {
		return nil, err
	}
	return append(append(info[:len(info)-1], ','), urls[1:]...), nil
}

// UnmarshalJSON reads what MarshalJSON writes.
func (l *SnapshotLink) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &l.SnapshotInfo); err != nil {
		return err
	}
	var u snapshotURLs
	if err := json.Unmarshal(b, &u); err != nil {
		return err
	}
	l.Report, l.JSON, l.Zip = u.Report, u.JSON, u.Zip
	return nil
}

func linkFor(info diag.SnapshotInfo) SnapshotLink {
	base := Prefix + "/snapshots/" + info.ID
	return SnapshotLink{SnapshotInfo: info, Report: base, JSON: base + "?format=json", Zip: base + ".zip"}
}

// streamClients counts the connected stream clients of one handler.
type streamClients struct{ n atomic.Int32 }

// The hello frame's timeline may end with the sample that the first sample
// frame carries again; clients can tell by the time.
func (h *handler) upgrader() *websocket.Upgrader {
	return &websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  16 << 10,
		CheckOrigin:      func(r *http.Request) bool { return h.originOK(r) },
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			serveError(w, status, "stream: "+reason.Error())
		},
	}
}

// originOK allows requests without an Origin (not from a browser), from
// the same origin, or from an allowed one.
func (h *handler) originOK(r *http.Request) bool {
	o := r.Header.Get("Origin")
	return o == "" || h.originAllowed(o, r.Host)
}

func (h *handler) stream(w http.ResponseWriter, r *http.Request) {
	q, err := params(r, "every")
	if err != nil {
		serveError(w, http.StatusBadRequest, err.Error())
		return
	}
	every := 1
	if s := q.Get("every"); s != "" {
		every, err = strconv.Atoi(s)
		if err != nil || every < 1 || every > 600 {
			serveError(w, http.StatusBadRequest, fmt.Sprintf("every must be a whole number from 1 to 600 (send every Nth sample), not %q", s))
			return
		}
	}
	if !websocket.IsWebSocketUpgrade(r) {
		serveError(w, http.StatusBadRequest, "this path is a websocket stream; connect with a websocket client (cmd/lockdiag watch, or the page at "+Prefix+"/ui)")
		return
	}
	if !h.originOK(r) {
		serveError(w, http.StatusForbidden, fmt.Sprintf("stream: origin %q is not allowed", r.Header.Get("Origin")))
		return
	}
	if n := h.clients.n.Add(1); int(n) > h.maxClients() {
		h.clients.n.Add(-1)
		serveError(w, http.StatusServiceUnavailable, fmt.Sprintf("too many stream clients (the limit is %d)", h.maxClients()))
		return
	}
	defer h.clients.n.Add(-1)

	// Subscribe before the hello frame so that nothing falls between.
	sub := h.m.Subscribe(clientBuffer)
	defer sub.Close()
	conn, err := h.upgrader().Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	defer conn.Close()
	conn.SetReadLimit(512)

	// The reader: discards what the client sends, answers pings, notices
	// when the client goes away.
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		conn.SetReadDeadline(time.Now().Add(pongWait))
		conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
			conn.SetReadDeadline(time.Now().Add(pongWait))
		}
	}()
	defer func() {
		conn.Close()
		<-gone
	}()

	s := &streamWriter{conn: conn, sub: sub}
	if err := s.write(h.hello(every)); err != nil {
		return
	}
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	samples := 0
	for {
		select {
		case <-gone:
			return
		case <-ping.C:
			conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		case ev, ok := <-sub.C():
			if !ok {
				// The monitor stopped.
				conn.SetWriteDeadline(time.Now().Add(writeWait))
				conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "lockdiag stopped"))
				return
			}
			if ev.Type == diag.EventSample {
				samples++
				if samples%every != 0 {
					continue
				}
			}
			if err := s.write(frameOf(ev)); err != nil {
				return
			}
		}
	}
}

func (h *handler) maxClients() int {
	if h.opts.MaxStreamClients > 0 {
		return h.opts.MaxStreamClients
	}
	return 16
}

// streamWriter writes frames to one client.
type streamWriter struct {
	conn *websocket.Conn
	sub  *diag.Subscription
}

func (s *streamWriter) write(f Message) error {
	f.Dropped = s.sub.Dropped()
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	s.conn.SetWriteDeadline(time.Now().Add(writeWait))
	return s.conn.WriteMessage(websocket.TextMessage, data)
}

func frameOf(ev diag.Event) Message {
	f := Message{Type: string(ev.Type), Time: ev.Time, Sample: ev.Sample, Breach: ev.Breach, Reason: ev.Reason,
		NamedLocks: ev.NamedLocks, Inversion: ev.Inversion}
	if ev.Snapshot != nil {
		l := linkFor(*ev.Snapshot)
		f.Snapshot = &l
	}
	return f
}

// hello is the first frame: what the client needs to draw history and
// make sense of what follows.
func (h *handler) hello(every int) Message {
	cfg := h.m.Config()
	st := h.m.Status()
	f := Message{
		Type:     "hello",
		Time:     st.Time,
		Version:  StreamVersion,
		Interval: cfg.Interval.String(),
		Every:    every,
		Rules:    st.Rules,
		Trace:    st.Trace,
		// The stream's named locks carry no stacks; Status has them.
		NamedLocks: compactNamed(st.NamedLocks),
		Inversions: st.Inversions,
	}
	for _, s := range diag.Signals() {
		f.Signals = append(f.Signals, SignalInfo{s.String(), s.Unit(), s.Help()})
	}
	tl := h.m.Timeline(time.Time{})
	var kept []diag.Sample
	for i := len(tl) - 1; i >= 0 && len(kept) < maxHelloSamples; i -= every {
		kept = append(kept, tl[i])
	}
	slices.Reverse(kept)
	f.Timeline = kept
	for _, s := range st.Snapshots {
		f.Snapshots = append(f.Snapshots, linkFor(s))
	}
	return f
}

// compactNamed returns at most the stream's 20 busiest named locks, without
// their stacks.
func compactNamed(nl []lockreport.NamedLock) []lockreport.NamedLock {
	out := slices.Clone(nl[:min(len(nl), 20)])
	for i := range out {
		out[i].AcquiredAt, out[i].HolderStack = nil, nil
	}
	return out
}
