// Command goload is the Go load generator of bench/run.py (`--loadgen go`):
// one publisher and N receivers in one channel, driven step by step over
// stdin/stdout (one JSON object a line), so the clients cost the shared two
// cores far less than Python clients would.
//
// Protocols: "ours" (PROTOCOL.md: session cookie, `connected`, join_channel,
// send_message, deliveries are `new_message` events, one per frame) and
// "centrifugo" (Centrifugo's bidirectional JSON protocol: connect,
// subscribe, publish; pushes may come several to a frame, one per line).
//
// Every published text carries the bench marker `b|<step>|<seq>|<sent µs>`
// (bench/targets.py); a receiver finds every marker in a frame, so latency,
// loss and duplicates are counted alike for both servers.
//
//	goload -proto ours -url ws://127.0.0.1:8000/ws/chat/ -credentials FILE -channel 42
//	stdin:  {"cmd":"step","step":1,"rate":10,"seconds":3,"first_seq":1}
//	stdout: {"step":1,"sent":30,"accepted":30,...}
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

const (
	maxSteps      = 64
	drainCap      = 45 * time.Second
	drainStall    = 5 * time.Second
	answerTimeout = 20 * time.Second
	openTimeout   = 30 * time.Second
	quietFor      = 1500 * time.Millisecond
)

var (
	proto       = flag.String("proto", "ours", "ours | centrifugo")
	urls        = flag.String("url", "", "comma-separated WebSocket URLs; receiver i connects to url i % n, the publisher to the first")
	pubURLs     = flag.String("pub-url", "", "comma-separated WebSocket URLs of the publishers (publisher i: url i % n); default: the first of -url")
	publishers  = flag.Int("publishers", 1, "publisher connections (the publisher's credential each); message i goes through publisher i % n")
	credentials = flag.String("credentials", "", "ours: file of session keys, one a line, the publisher's first")
	members     = flag.Int("members", 1000, "receivers")
	channel     = flag.String("channel", "bench", "ours: the channel id; centrifugo: the channel name")
	concurrency = flag.Int("concurrency", 8, "handshakes in flight")
	clientID    = flag.String("client-id-prefix", strconv.FormatInt(time.Now().UnixNano(), 36), "ours: clientId prefix, unique per run")
)

// conn is one client connection and what it received.
type conn struct {
	ws      *websocket.Conn
	wmu     sync.Mutex // writes: the reader answers pings, the publisher sends
	mu      sync.Mutex
	seen    map[int]bool // seq -> delivered (receivers)
	lat     map[int][]float32
	dups    map[int]int
	first   map[int]float64
	last    map[int]float64
	closed  atomic.Bool
	answers chan answer // publisher only
}

type answer struct {
	seq int
	ok  bool
	at  float64
}

var (
	perStep [maxSteps]atomic.Int64 // first deliveries per step, all receivers
	other   atomic.Int64           // frames without a marker
)

func now() float64 { return float64(time.Now().UnixNano()) / 1e9 }

func (c *conn) write(data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

// markers calls fn for every `b|step|seq|us` in data.
func markers(data []byte, fn func(step, seq int, us int64)) int {
	n := 0
	for {
		i := bytes.Index(data, []byte("b|"))
		if i < 0 {
			return n
		}
		data = data[i+2:]
		var parts [3]int64
		ok := true
		for p := 0; p < 3; p++ {
			j := 0
			for j < len(data) && data[j] >= '0' && data[j] <= '9' {
				parts[p] = parts[p]*10 + int64(data[j]-'0')
				j++
			}
			if j == 0 || (p < 2 && (j >= len(data) || data[j] != '|')) {
				ok = false
				break
			}
			data = data[j:]
			if p < 2 {
				data = data[1:]
			}
		}
		if ok {
			fn(int(parts[0]), int(parts[1]), parts[2])
			n++
		}
	}
}

func (c *conn) readDeliveries() {
	defer c.closed.Store(true)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		t := now()
		found := markers(data, func(step, seq int, us int64) {
			if step <= 0 || step >= maxSteps {
				return
			}
			c.mu.Lock()
			if c.seen[seq] {
				c.dups[step]++
			} else {
				c.seen[seq] = true
				c.lat[step] = append(c.lat[step], float32(t*1000-float64(us)/1000))
				if c.first[step] == 0 {
					c.first[step] = t
				}
				c.last[step] = t
				perStep[step].Add(1)
			}
			c.mu.Unlock()
		})
		if found == 0 {
			other.Add(1)
			if *proto == "centrifugo" && bytes.Equal(bytes.TrimSpace(data), []byte("{}")) {
				_ = c.write([]byte("{}")) // Centrifugo's application-level ping wants a pong
			}
		}
	}
}

var (
	ourRequest = []byte(`"requestId":"p`)
	centID     = []byte(`"id":`)
)

func (c *conn) readAnswers() {
	defer c.closed.Store(true)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		t := now()
		for _, line := range bytes.Split(data, []byte("\n")) {
			switch *proto {
			case "ours":
				i := bytes.Index(line, ourRequest)
				if i < 0 {
					continue
				}
				seq, _ := strconv.Atoi(string(line[i+len(ourRequest) : i+len(ourRequest)+bytes.IndexByte(line[i+len(ourRequest):], '"')]))
				c.answers <- answer{seq, bytes.Contains(line, []byte(`"type":"new_message"`)), t}
			case "centrifugo":
				if bytes.Equal(bytes.TrimSpace(line), []byte("{}")) {
					_ = c.write([]byte("{}"))
					continue
				}
				if !bytes.HasPrefix(line, []byte(`{"id":`)) {
					continue
				}
				rest := line[len(centID)+1:]
				j := 0
				for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
					j++
				}
				id, _ := strconv.Atoi(string(rest[:j]))
				if id > 100 {
					c.answers <- answer{id - 100, !bytes.Contains(line, []byte(`"error"`)), t}
				}
			}
		}
	}
}

func dial(url, credential string) (*conn, error) {
	header := http.Header{}
	origin := strings.Replace(strings.SplitN(url, "/", 4)[0]+"//"+strings.SplitN(url, "/", 4)[2], "ws", "http", 1)
	header.Set("Origin", origin)
	if credential != "" {
		header.Set("Cookie", "sessionid="+credential)
	}
	dialer := websocket.Dialer{HandshakeTimeout: openTimeout}
	var lastErr error
	for _, pause := range []time.Duration{time.Second, 3 * time.Second, 0} {
		ws, _, err := dialer.Dial(url, header)
		if err == nil {
			c := &conn{ws: ws, seen: map[int]bool{}, lat: map[int][]float32{}, dups: map[int]int{}, first: map[int]float64{}, last: map[int]float64{}}
			if err = handshake(c); err == nil {
				return c, nil
			}
			ws.Close()
		}
		lastErr = err
		if pause == 0 {
			break
		}
		time.Sleep(pause)
	}
	return nil, lastErr
}

func readUntil(c *conn, want string) ([]byte, error) {
	c.ws.SetReadDeadline(time.Now().Add(openTimeout))
	defer c.ws.SetReadDeadline(time.Time{})
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		if bytes.Contains(data, []byte(want)) || bytes.Contains(data, []byte(`"error"`)) {
			return data, nil
		}
	}
}

func handshake(c *conn) error {
	switch *proto {
	case "ours":
		data, err := readUntil(c, `"type":"connected"`)
		if err != nil {
			return err
		}
		if !bytes.Contains(data, []byte(`"type":"connected"`)) {
			return fmt.Errorf("refused: %.200s", data)
		}
		if err := c.write([]byte(`{"type":"join_channel","channelId":` + *channel + `,"requestId":"join"}`)); err != nil {
			return err
		}
		data, err = readUntil(c, `"requestId":"join"`)
		if err != nil {
			return err
		}
		if !bytes.Contains(data, []byte(`"type":"joined_channel"`)) {
			return fmt.Errorf("join refused: %.200s", data)
		}
	case "centrifugo":
		if err := c.write([]byte(`{"id":1,"connect":{}}`)); err != nil {
			return err
		}
		if data, err := readUntil(c, `"connect"`); err != nil || !bytes.Contains(data, []byte(`"connect"`)) {
			return fmt.Errorf("connect: %v %.200s", err, data)
		}
		if err := c.write([]byte(`{"id":2,"subscribe":{"channel":"` + *channel + `"}}`)); err != nil {
			return err
		}
		if data, err := readUntil(c, `"id":2`); err != nil || bytes.Contains(data, []byte(`"error"`)) {
			return fmt.Errorf("subscribe: %v %.200s", err, data)
		}
	}
	return nil
}

func openAll(targets []string, creds []string, n int) ([]*conn, []string) {
	conns := make([]*conn, n)
	errs := make([]string, 0)
	var mu sync.Mutex
	gate := make(chan struct{}, *concurrency)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			gate <- struct{}{}
			defer func() { <-gate }()
			cred := ""
			if len(creds) > 0 {
				cred = creds[i%len(creds)]
			}
			c, err := dial(targets[i%len(targets)], cred)
			if err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
				return
			}
			conns[i] = c
			go c.readDeliveries() // at once: the server's pings want pongs while the others join
		}(i)
	}
	wg.Wait()
	open := conns[:0]
	for _, c := range conns {
		if c != nil {
			open = append(open, c)
		}
	}
	return open, errs
}

type command struct {
	Cmd      string  `json:"cmd"`
	Step     int     `json:"step"`
	Rate     float64 `json:"rate"`
	Seconds  float64 `json:"seconds"`
	FirstSeq int     `json:"first_seq"`
}

func publishMessage(step, seq int) []byte {
	mark := fmt.Sprintf("b|%d|%d|%d", step, seq, time.Now().UnixNano()/1000)
	if *proto == "ours" {
		return []byte(fmt.Sprintf(`{"type":"send_message","channelId":%s,"content":"%s","clientId":"%s-%d","requestId":"p%d"}`, *channel, mark, *clientID, seq, seq))
	}
	return []byte(fmt.Sprintf(`{"id":%d,"publish":{"channel":"%s","data":{"text":"%s"}}}`, seq+100, *channel, mark))
}

func percentile(sorted []float32, q float64) float64 {
	if len(sorted) == 0 {
		return -1
	}
	i := int(q * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i])
}

func step(pubs []*conn, answers chan answer, receivers []*conn, cmd command) map[string]any {
	count := int(cmd.Rate*cmd.Seconds + 0.5)
	if count < 1 {
		count = 1
	}
	started, firstSend := time.Now(), now()
	slip := time.Duration(0)
	for i := 0; i < count; i++ {
		at := started.Add(time.Duration(float64(i) / cmd.Rate * float64(time.Second)))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		} else if -d > slip {
			slip = -d
		}
		if err := pubs[i%len(pubs)].write(publishMessage(cmd.Step, cmd.FirstSeq+i)); err != nil {
			break
		}
	}
	sendSeconds := time.Since(started).Seconds()
	got := map[int]answer{}
	deadline := time.After(answerTimeout)
wait:
	for len(got) < count {
		select {
		case a := <-answers:
			if a.seq >= cmd.FirstSeq && a.seq < cmd.FirstSeq+count {
				if _, dup := got[a.seq]; !dup {
					got[a.seq] = a
				}
			}
		case <-deadline:
			break wait
		}
	}
	accepted := []int{}
	lastAnswer := 0.0
	for seq, a := range got {
		if a.ok {
			accepted = append(accepted, seq)
		}
		if a.at > lastAnswer {
			lastAnswer = a.at
		}
	}
	// Drain: every accepted message to every open receiver, or deliveries stall.
	moved, last := time.Now(), int64(-1)
	capAt := time.Now().Add(drainCap)
	for time.Now().Before(capAt) {
		open := 0
		for _, c := range receivers {
			if !c.closed.Load() {
				open++
			}
		}
		n := perStep[cmd.Step].Load()
		if n >= int64(len(accepted)*open) {
			break
		}
		if n != last {
			last, moved = n, time.Now()
		} else if time.Since(moved) > drainStall {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	lat := []float32{}
	delivered, lost, dups, dropped, lostDropped := 0, 0, 0, 0, 0
	first, lastDelivery := 0.0, 0.0
	for _, c := range receivers {
		c.mu.Lock()
		have := 0
		for _, seq := range accepted {
			if c.seen[seq] {
				have++
			}
		}
		if c.closed.Load() {
			dropped++
			lostDropped += len(accepted) - have
		} else {
			lost += len(accepted) - have
		}
		delivered += have
		dups += c.dups[cmd.Step]
		lat = append(lat, c.lat[cmd.Step]...)
		if f := c.first[cmd.Step]; f > 0 && (first == 0 || f < first) {
			first = f
		}
		if l := c.last[cmd.Step]; l > lastDelivery {
			lastDelivery = l
		}
		delete(c.lat, cmd.Step)
		c.mu.Unlock()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	window := lastDelivery - firstSend
	perS := 0.0
	if window > 0 {
		perS = float64(delivered) / window
	}
	acceptPerS := 0.0
	if lastAnswer > firstSend {
		acceptPerS = float64(len(accepted)) / (lastAnswer - firstSend)
	}
	return map[string]any{
		"step": cmd.Step, "rate": cmd.Rate, "sent": count, "accepted": len(accepted), "errors": count - len(accepted),
		"delivered": delivered, "delivered_per_s": perS, "lost": lost, "dropped": dropped, "lost_dropped": lostDropped,
		"dups": dups, "p50": percentile(lat, 0.5), "p99": percentile(lat, 0.99), "max": percentile(lat, 1),
		"first_send": firstSend, "send_seconds": sendSeconds, "accept_per_s": acceptPerS, "worst_slip_ms": slip.Seconds() * 1000,
		"reconnects": 0,
	}
}

func emit(v any) {
	data, _ := json.Marshal(v)
	os.Stdout.Write(append(data, '\n'))
}

func main() {
	flag.Parse()
	targets := strings.Split(*urls, ",")
	var creds []string
	if *credentials != "" {
		data, err := os.ReadFile(*credentials)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		creds = strings.Fields(string(data))
	}
	pubCred, recvCreds := "", creds
	if len(creds) > 0 {
		pubCred, recvCreds = creds[0], creds[1:]
	}
	started := time.Now()
	receivers, errs := openAll(targets, recvCreds, *members)
	pubTargets := targets[:1]
	if *pubURLs != "" {
		pubTargets = strings.Split(*pubURLs, ",")
	}
	answers := make(chan answer, 100000) // every publisher's answers
	pubs := make([]*conn, *publishers)
	for i := range pubs {
		pub, err := dial(pubTargets[i%len(pubTargets)], pubCred)
		if err != nil {
			emit(map[string]any{"error": "publisher: " + err.Error()})
			os.Exit(1)
		}
		pub.answers = answers
		go pub.readAnswers()
		pubs[i] = pub
	}
	// The joins' side frames (presence) settle before the first step.
	lastOther, quietSince := other.Load(), time.Now()
	for time.Since(quietSince) < quietFor && time.Since(started) < 120*time.Second {
		time.Sleep(250 * time.Millisecond)
		if n := other.Load(); n != lastOther {
			lastOther, quietSince = n, time.Now()
		}
	}
	if len(errs) > 3 {
		errs = errs[:3]
	}
	emit(map[string]any{"ready": len(receivers), "failed": *members - len(receivers), "errors": errs, "join_seconds": time.Since(started).Seconds(), "other": other.Load()})
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var cmd command
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
			emit(map[string]any{"error": err.Error()})
			continue
		}
		switch cmd.Cmd {
		case "step":
			if cmd.Step <= 0 || cmd.Step >= maxSteps {
				emit(map[string]any{"error": errors.New("step out of range").Error()})
				continue
			}
			emit(step(pubs, answers, receivers, cmd))
		case "quit":
			return
		}
	}
}
