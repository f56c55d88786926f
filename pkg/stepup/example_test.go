package stepup_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"golang.org/x/oauth2"

	"github.com/stepgate/stepgate/pkg/stepup"
)

// exampleToken stands in for the access token a client got from
// Stepgate: alice, signed in with a password, with the authentication
// contexts acrs satisfied.
func exampleToken(ti *testIssuer, acrs ...string) string {
	c := ti.claimsAt(time.Now())
	c.ACRs = acrs
	raw, err := signToken(ti.keys[0], "at+jwt", c)
	if err != nil {
		panic(err)
	}
	return raw
}

// An API protects one route with authentication context c1: a token
// without it gets RFC 9470's challenge, one with it reaches the handler.
func ExampleVerifier_Require() {
	stepgate := startIssuer() // stands in for https://id.example.com
	defer stepgate.srv.Close()

	v, err := stepup.NewVerifier(context.Background(), stepgate.srv.URL,
		stepup.WithAudience("api-client"), stepup.WithRealm("customers"))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /customers/{id}", v.Require(stepup.Context("c1"))(http.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request) {
			c, _ := stepup.ClaimsFrom(r.Context())
			fmt.Fprintf(w, "customer %s, shown to %s", r.PathValue("id"), c.Username)
		})))

	for _, token := range []string{"", exampleToken(stepgate), exampleToken(stepgate, "c1")} {
		req := httptest.NewRequest("GET", "/customers/42", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code == http.StatusOK {
			fmt.Println(w.Code, w.Body)
		} else {
			fmt.Println(w.Code, w.Header().Get("WWW-Authenticate"))
		}
	}
	// Output:
	// 401 Bearer realm="customers"
	// 401 Bearer realm="customers", error="insufficient_user_authentication", error_description="this request needs authentication context c1", acr_values="c1"
	// 200 customer 42, shown to alice
}

// Check serves callers that are not HTTP handlers, such as a queue
// consumer that verified a token itself.
func ExampleVerifier_Check() {
	stepgate := startIssuer()
	defer stepgate.srv.Close()
	ctx := context.Background()
	v, err := stepup.NewVerifier(ctx, stepgate.srv.URL, stepup.WithAudience("api-client"))
	if err != nil {
		log.Fatal(err)
	}
	claims, err := v.Verify(ctx, exampleToken(stepgate))
	if err != nil {
		log.Fatal(err)
	}
	if ch := v.Check(claims, stepup.ACR("mfa"), stepup.MaxAge(time.Hour)); ch != nil {
		fmt.Println(ch.Error, ch.ACRValues, ch.HasMaxAge)
	}
	// Output:
	// insufficient_user_authentication [mfa] false
}

// A client that got a 401 reads the challenge and sends the user through
// the authorization endpoint again with what it asks for.
func ExampleChallengeFrom() {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", stepup.Insufficient("needs c1", []string{"c1"}, 0).String())
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer api.Close()

	resp, err := http.Get(api.URL)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	ch, ok := stepup.ChallengeFrom(resp)
	if !ok {
		log.Fatal("no challenge")
	}
	conf := oauth2.Config{
		ClientID: "webapp", RedirectURL: "https://app.example.com/callback",
		Endpoint: oauth2.Endpoint{AuthURL: "https://id.example.com/oauth2/authorize"},
	}
	opts := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("max_age", "0")} // prove it again, now
	for k := range ch.AuthorizeParams() {
		opts = append(opts, oauth2.SetAuthURLParam(k, ch.AuthorizeParams().Get(k)))
	}
	fmt.Println(ch.Error)
	fmt.Println(conf.AuthCodeURL("state", opts...))
	// Output:
	// insufficient_user_authentication
	// https://id.example.com/oauth2/authorize?acr_values=c1&client_id=webapp&max_age=0&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&response_type=code&state=state
}

// Entra's form of a challenge, which clients that declared the cp1
// capability receive, carries a claims request to send back as is.
func ExampleParseChallenge() {
	ch, err := stepup.ParseChallenge(`Bearer authorization_uri="https://id.example.com/oauth2/authorize", ` +
		`error="insufficient_claims", claims="eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19"`)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ch.AuthorizeParams().Get("claims"))
	// Output:
	// {"access_token":{"acrs":{"essential":true,"value":"c1"}}}
}
