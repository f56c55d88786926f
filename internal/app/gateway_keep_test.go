package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepgate/stepgate/internal/config"
	"github.com/stepgate/stepgate/internal/store/postgres/pgtest"
)

// dirSize is the size of every file in the data directory.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// keptUsage is how many requests the store holds kept, and their bytes.
func (g *gatewayRig) keptUsage(t *testing.T, prefix string) (int, int64) {
	t.Helper()
	n, size, err := g.server.app.Store.KVUsage(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return n, size
}

// floodResult counts the answers of a flood.
type floodResult struct {
	mu       sync.Mutex
	status   map[int]int
	kept     int // 303s to the sign-in with a kept request
	errs     int // transport errors (the gateway closed before the whole upload)
	badPages int // refusals without a page that says what to do
}

// flood sends n anonymous POSTs of size bytes to the app, workers at a
// time, each from the address from(i) as a trusted proxy reports it
// ("" for none), streamed without a length when chunked. It stops by
// itself: every request has a deadline, and the whole flood one minute.
func (g *gatewayRig) flood(t *testing.T, n, size, workers int, chunked bool, from func(i int) string) *floodResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := &floodResult{status: map[int]int{}}
	body := strings.Repeat("a", size)
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		c := gatewayBrowser(t, g.server)
		wg.Go(func() {
			for i := range jobs {
				g.floodOne(ctx, c, res, body, chunked, from(i))
			}
		})
	}
	for i := range n {
		select {
		case jobs <- i:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the flood did not finish in a minute: %+v", res.status)
	}
	return res
}

func (g *gatewayRig) floodOne(ctx context.Context, c *http.Client, res *floodResult, body string, chunked bool, addr string) {
	var rd io.Reader = strings.NewReader(body)
	if chunked {
		rd = io.MultiReader(rd) // hides the length: sent chunked
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", g.app+"/accounts", rd)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if addr != "" {
		req.Header.Set("X-Forwarded-For", addr)
	}
	resp, err := c.Do(req)
	res.mu.Lock()
	defer res.mu.Unlock()
	if err != nil {
		res.errs++
		return
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	res.status[resp.StatusCode]++
	switch resp.StatusCode {
	case http.StatusSeeOther:
		if strings.Contains(resp.Header.Get("Location"), "kept=") {
			res.kept++
		}
	case http.StatusTooManyRequests, http.StatusRequestEntityTooLarge:
		if !strings.Contains(string(page), "/gateway/start?") || !strings.Contains(string(page), "send it") {
			res.badPages++
		}
	}
}

// TestGatewayKeptRequestFlood: an anonymous client flooding a signed-in
// page with large form posts cannot make the gateway store more than the
// anonymous quota, from one address or from many (through a trusted
// proxy); the data directory stays within it; the space comes back once
// the kept requests expire; and a signed-in user's request is still kept
// and replayed afterwards.
func TestGatewayKeptRequestFlood(t *testing.T) {
	g := startGateway(t, func(cfg *config.Config) {
		cfg.Server.TrustedProxies = []string{"127.0.0.1/32"}
	})
	limits := g.server.app.Config.Gateway.KeptRequests
	dataDir := g.server.app.Config.Server.DataDir
	// The legitimate user signs in and enrolls a second factor first.
	user := gatewayBrowser(t, g.server)
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	if resp, _ := g.walk(t, user, mustDo(t, user, "GET", g.app+"/accounts", ""), noStepUp); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	secret := g.enrollTOTP(t, user)
	checkpoint(t, g)
	base, baseDB := dirSize(t, dataDir), fileSize(t, filepath.Join(dataDir, "stepgate.db"))

	// 1. One address, 500 × 1 MiB, half of them streamed without a
	// length: refused before anything is stored.
	for _, chunked := range []bool{false, true} {
		start := time.Now()
		res := g.flood(t, 250, 1<<20, 8, chunked, func(int) string { return "" })
		t.Logf("one address, 250 × 1 MiB (chunked %v) in %s: %v, %d transport errors; data dir %d → %d bytes",
			chunked, time.Since(start).Round(time.Millisecond), res.status, res.errs, base, dirSize(t, dataDir))
		if res.kept != 0 || res.badPages != 0 || res.status[http.StatusSeeOther] != 0 {
			t.Fatalf("1 MiB anonymous posts: %d kept, %d refusals without a clear page: %v", res.kept, res.badPages, res.status)
		}
	}
	if n, _ := g.keptUsage(t, "gw/kept/"); n != 0 {
		t.Fatalf("%d requests kept from 1 MiB anonymous posts, want none", n)
	}

	// 2. 500 addresses (as a trusted proxy reports them), each posting
	// just under the anonymous body limit: the anonymous quota holds.
	start := time.Now()
	size := limits.AnonymousBodyLimit - 1024
	res := g.flood(t, 500, size, 8, false, func(i int) string { return fmt.Sprintf("10.7.%d.%d", i/250, i%250+1) })
	n, stored := g.keptUsage(t, "gw/kept/")
	grown, wal := dirSize(t, dataDir), fileSize(t, filepath.Join(dataDir, "stepgate.db-wal"))
	checkpoint(t, g)
	db := fileSize(t, filepath.Join(dataDir, "stepgate.db"))
	t.Logf("500 addresses × %d bytes in %s: %v; kept %d requests, %d bytes stored; data dir %d → %d bytes (+%d, of which write-ahead log %d); database file after a checkpoint %d (base %d)",
		size, time.Since(start).Round(time.Millisecond), res.status, n, stored, base, grown, grown-base, wal, db, baseDB)
	switch {
	case res.kept == 0 || res.status[http.StatusTooManyRequests] == 0 || res.badPages != 0:
		t.Fatalf("want some kept, the rest refused with a clear 429 page: %v (%d without a clear page)", res.status, res.badPages)
	case n > limits.AnonymousMaxCount || stored > int64(limits.AnonymousMaxBytes):
		t.Fatalf("kept %d requests of %d bytes: over the anonymous quota (%d, %d bytes)", n, stored, limits.AnonymousMaxCount, limits.AnonymousMaxBytes)
	case db-baseDB > int64(limits.AnonymousMaxBytes)*11/10:
		t.Fatalf("the database grew by %d bytes, more than the anonymous quota (%d) and a tenth for pages", db-baseDB, limits.AnonymousMaxBytes)
	case counters(t, g) > n:
		t.Fatalf("%d per-address counters for %d kept requests: a client posting from many addresses makes the gateway store a counter for each", counters(t, g), n)
	case grown-base > int64(limits.AnonymousMaxBytes)+walAllowance:
		t.Fatalf("data dir grew by %d bytes during the flood, more than the anonymous quota (%d) and the log (%d)", grown-base, limits.AnonymousMaxBytes, walAllowance)
	}

	// 3. The signed-in user's transfer (512 KiB form) is still kept and,
	// after the step-up, replayed exactly once.
	form := "amount=100&memo=" + strings.Repeat("m", 512<<10)
	resp := mustDo(t, user, "POST", g.app+"/transfers", form)
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "kept=") {
		t.Fatalf("signed-in transfer after the flood: %d %s, want it kept", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := g.walk(t, user, resp, func(loc *url.URL) *http.Response {
		_, page := get(t, user, loc.String())
		csrf, cer := formOf(t, page)
		r, _ := post(t, user, g.base+"/stepup", url.Values{"csrf_token": {csrf}, "ceremony": {cer},
			"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}, "return_to": {loc.Query().Get("return_to")}})
		return r
	})
	if resp.StatusCode != http.StatusOK || body != "upstream: POST /transfers" || g.upstream.count("POST", "/transfers") != 1 {
		t.Fatalf("transfer after step-up: %d %q, upstream saw it %d times", resp.StatusCode, body, g.upstream.count("POST", "/transfers"))
	}
	for _, s := range g.upstream.all() {
		if s.Path == "/transfers" && s.Body != form {
			t.Fatalf("the replayed transfer lost its form (%d bytes, want %d)", len(s.Body), len(form))
		}
	}

	// 4. The sweep after the kept requests expire gives the space back.
	if _, err := g.server.app.Store.DeleteExpiredKV(context.Background(), time.Now().Add(11*time.Minute)); err != nil {
		t.Fatal(err)
	}
	checkpoint(t, g)
	after := dirSize(t, dataDir)
	t.Logf("after the sweep: data dir %d bytes (started at %d)", after, base)
	if n, _ := g.keptUsage(t, "gw/kept/"); n != 0 || after > base+(1<<20) {
		t.Fatalf("after the sweep: %d kept, data dir %d bytes; want none and back near %d", n, after, base)
	}
}

// counters is how many per-address keep counters the store holds.
func counters(t *testing.T, g *gatewayRig) int {
	t.Helper()
	n, _ := g.keptUsage(t, "gw/keep-rate/")
	return n
}

// checkpoint writes SQLite's log into the database file and truncates
// it, so sizes measure what is stored rather than the log of a burst.
//
// A checkpoint that finds a reader still on the log reports busy rather
// than failing, and leaves the log as it was: on a loaded machine the
// server's own reads can overlap it, so it is tried again until it
// completes.
func checkpoint(t *testing.T, g *gatewayRig) {
	t.Helper()
	db := g.server.app.Store.(interface{ SQL() *sql.DB }).SQL()
	for range 50 {
		var busy, logPages, done int
		if err := db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &done); err != nil {
			t.Fatal(err)
		}
		if busy == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the write-ahead log checkpoint stayed busy for 5 s")
}

// fileSize is the size of one file, 0 when there is none.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// walAllowance bounds how far the write-ahead log may stand above the
// database's contents during a burst of writes, before a checkpoint
// writes it into the file and cuts it back to 4 MiB
// (journal_size_limit).
const walAllowance = 24 << 20

// TestGatewayKeepLimits: each bound on kept requests refuses with a
// clear page and stores nothing: an anonymous body over its smaller
// limit (413), the per-address limit (429 with Retry-After), the
// anonymous share of the quota; a signed-in user's budget is its own.
func TestGatewayKeepLimits(t *testing.T) {
	g := startGateway(t, func(cfg *config.Config) {
		k := &cfg.Gateway.KeptRequests
		k.AnonymousPerAddress, k.PerAddress = 3, 5
		k.AnonymousMaxCount, k.MaxCount = 6, 8
	})
	anon := gatewayBrowser(t, g.server)
	send := func(c *http.Client, size int, header ...string) (*http.Response, string) {
		t.Helper()
		resp := mustDo(t, c, "POST", g.app+"/accounts", "x="+strings.Repeat("a", size), header...)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	clearPage := func(name string, resp *http.Response, page string, status int) {
		t.Helper()
		if resp.StatusCode != status || !strings.Contains(page, "was not") || !strings.Contains(page, `href="http://127.0.0.1`) {
			t.Fatalf("%s: %d, want %d and a page saying what happened with a link to sign in:\n%s", name, resp.StatusCode, status, page)
		}
	}

	resp, page := send(anon, 100<<10)
	clearPage("fail/anonymous-body-over-64KiB", resp, page, http.StatusRequestEntityTooLarge)
	for i := range 3 {
		if resp, _ := send(anon, 100); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("anonymous keep %d: %d, want kept", i+1, resp.StatusCode)
		}
	}
	resp, page = send(anon, 100)
	clearPage("fail/per-address", resp, page, http.StatusTooManyRequests)
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("per-address refusal without Retry-After (%q)", ra)
	}
	if n, _ := g.keptUsage(t, "gw/kept/"); n != 3 {
		t.Fatalf("%d kept after three allowed and two refused, want 3", n)
	}

	// A signed-in user on the same address has a budget of its own.
	user := gatewayBrowser(t, g.server)
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	if resp, _ := g.walk(t, user, mustDo(t, user, "GET", g.app+"/accounts", ""), noStepUp); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	g.enrollTOTP(t, user)
	for i := range 5 {
		resp := mustDo(t, user, "POST", g.app+"/transfers", "amount=1")
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Location"), "kept=") {
			t.Fatalf("signed-in keep %d: %d, want kept", i+1, resp.StatusCode)
		}
	}
	resp = mustDo(t, user, "POST", g.app+"/transfers", "amount=1")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	clearPage("fail/signed-in-per-address", resp, string(b), http.StatusTooManyRequests)
	if n, _ := g.keptUsage(t, "gw/kept/user/"); n != 5 {
		t.Fatalf("%d signed-in requests kept, want 5", n)
	}
}

// TestGatewayKeepQuotaShares: anonymous requests from many addresses
// stop at their share of the quota; signed-in requests use the rest
// up to the total.
func TestGatewayKeepQuotaShares(t *testing.T) {
	g := startGateway(t, func(cfg *config.Config) {
		cfg.Server.TrustedProxies = []string{"127.0.0.1/32"}
		k := &cfg.Gateway.KeptRequests
		k.AnonymousMaxCount, k.MaxCount = 4, 6
	})
	anon := gatewayBrowser(t, g.server)
	kept := 0
	for i := range 8 {
		resp := mustDo(t, anon, "POST", g.app+"/accounts", "x=1", "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i+1))
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusSeeOther:
			kept++
		case resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(b), "as many requests"):
			t.Fatalf("anonymous post %d: %d %s", i, resp.StatusCode, b)
		}
	}
	if kept != 4 {
		t.Fatalf("%d anonymous requests kept from 8 addresses, want the share of 4", kept)
	}
	user := gatewayBrowser(t, g.server)
	noStepUp := func(loc *url.URL) *http.Response { t.Fatalf("unexpected step-up: %s", loc); return nil }
	if resp, _ := g.walk(t, user, mustDo(t, user, "GET", g.app+"/accounts", ""), noStepUp); resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	g.enrollTOTP(t, user)
	for i, want := range []int{http.StatusSeeOther, http.StatusSeeOther, http.StatusTooManyRequests} {
		resp := mustDo(t, user, "POST", g.app+"/transfers", "amount=1")
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("signed-in keep %d with the total at %d of 6: %d, want %d", i+1, 4+i, resp.StatusCode, want)
		}
	}
}

// TestGatewayKeepBoundsAcrossNodes: two nodes sharing PostgreSQL hold
// kept requests to one quota and one per-address count between them:
// a client spreading its posts over both gets no more than from one.
func TestGatewayKeepBoundsAcrossNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	node := func() (*server, string) {
		var app string
		s := startOver(t, dsn, nil, func(cfg *config.Config) {
			_, port, _ := net.SplitHostPort(cfg.Server.Listen)
			app = "http://bank.localhost:" + port
			cfg.Server.TrustedProxies = []string{"127.0.0.1/32"}
			cfg.Gateway.Routes = []config.GatewayRoute{{Name: "bank", From: app, To: "http://127.0.0.1:9"}}
			k := &cfg.Gateway.KeptRequests
			k.AnonymousMaxCount, k.AnonymousPerAddress = 6, 3
		})
		return s, app
	}
	s1, app1 := node()
	s2, app2 := node()
	c1, c2 := gatewayBrowser(t, s1), gatewayBrowser(t, s2)
	post := func(i int, addr string) int {
		c, app := c1, app1
		if i%2 == 1 {
			c, app = c2, app2
		}
		resp := mustDo(t, c, "POST", app+"/accounts", "x=1", "X-Forwarded-For", addr)
		resp.Body.Close()
		return resp.StatusCode
	}
	count := func(codes []int) (kept int) {
		for _, c := range codes {
			if c == http.StatusSeeOther {
				kept++
			} else if c != http.StatusTooManyRequests {
				t.Fatalf("answers %v: want only 303 (kept) and 429", codes)
			}
		}
		return kept
	}

	// One address, alternating nodes: 3 kept, not 3 per node.
	var codes []int
	for i := range 6 {
		codes = append(codes, post(i, "198.51.100.1"))
	}
	if kept := count(codes); kept != 3 {
		t.Fatalf("one address over two nodes: %d kept (%v), want 3", kept, codes)
	}

	// Many addresses, concurrently on both nodes: the quota of 6 holds
	// (3 already kept).
	var mu sync.Mutex
	codes = nil
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			code := post(i, fmt.Sprintf("203.0.113.%d", i+1))
			mu.Lock()
			codes = append(codes, code)
			mu.Unlock()
		})
	}
	wg.Wait()
	if kept := count(codes); kept != 3 {
		t.Fatalf("12 addresses over two nodes with 3 places left: %d kept (%v), want 3", kept, codes)
	}
	if n, _, err := s1.app.Store.KVUsage(context.Background(), "gw/kept/"); err != nil || n != 6 {
		t.Fatalf("kept in the shared store: %d (%v), want the quota of 6", n, err)
	}
}

// TestGatewayAnonymousKeepsOff: with the anonymous budget at 0, a post
// without a session is never kept, and the page says to sign in first.
func TestGatewayAnonymousKeepsOff(t *testing.T) {
	g := startGateway(t, func(cfg *config.Config) { cfg.Gateway.KeptRequests.AnonymousMaxCount = 0 })
	resp := mustDo(t, gatewayBrowser(t, g.server), "POST", g.app+"/accounts", "x=1")
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(page), "Sign in, then send it once more") {
		t.Fatalf("%d, want 429 and a page saying to sign in first:\n%s", resp.StatusCode, page)
	}
	if n, _ := g.keptUsage(t, "gw/kept/"); n != 0 {
		t.Fatalf("%d kept, want none", n)
	}
}
