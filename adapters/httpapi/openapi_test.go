package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/logbookhq/logbook/adapters/httpapi"
)

// loadOpenAPI parses the served document with kin-openapi and validates it
// as OpenAPI 3, with its servers set to baseURL.
func loadOpenAPI(t *testing.T, raw []byte, baseURL string) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatalf("the document does not parse as OpenAPI: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI 3: %v", err)
	}
	doc.Servers = openapi3.Servers{{URL: baseURL}}
	return doc
}

var allMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

func TestTheOpenAPIDocumentIsValidAndMatchesTheServedRoutes(t *testing.T) {
	t.Parallel()
	// Given a server (with no readers: every route is still served).
	api := &httpapi.API{Users: oneUser{}}
	srv := httptest.NewServer(httpapi.NewHandler(alwaysReady, func() *httpapi.API { return api }))
	defer srv.Close()

	// When its document is fetched, without a token.
	resp, err := http.Get(srv.URL + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /v1/openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	doc := loadOpenAPI(t, raw, srv.URL)
	if bytes.Contains(raw, []byte("encodes itself")) {
		t.Errorf("a body type encodes itself, so its schema says nothing; describe it:\n%s", raw)
	}

	// Then every route of the table is in it, and nothing else is.
	documented := 0
	for path, item := range doc.Paths.Map() {
		documented += len(item.Operations())
		_ = path
	}
	routes := httpapi.Routes()
	if documented != len(routes) {
		t.Errorf("the document has %d operations, the route table %d", documented, len(routes))
	}
	for _, r := range routes {
		item := doc.Paths.Find(r.Path)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("%s is served but not documented", r.Pattern())
			continue
		}
		op := item.GetOperation(r.Method)
		for _, p := range r.Query {
			if op.Parameters.GetByInAndName("query", p.Name) == nil {
				t.Errorf("%s: query parameter %s is not documented", r.Pattern(), p.Name)
			}
		}
		if !r.Public && op.Responses.Status(http.StatusUnauthorized) == nil {
			t.Errorf("%s takes a token but documents no 401", r.Pattern())
		}
	}

	// And the mux serves each documented operation (its own 404 is plain
	// text, the API's are JSON) and no undocumented method of a path.
	for path, item := range doc.Paths.Map() {
		concrete := strings.NewReplacer("{id}", "probe", "{name}", "probe").Replace(path)
		for _, method := range allMethods {
			req, _ := http.NewRequest(method, srv.URL+concrete, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			servedHere := resp.StatusCode != http.StatusMethodNotAllowed &&
				(resp.StatusCode != http.StatusNotFound || strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json"))
			if documentedHere := item.GetOperation(method) != nil; servedHere != documentedHere {
				t.Errorf("%s %s: documented %v, but the server answers %d %q", method, path, documentedHere, resp.StatusCode, body)
			}
		}
	}
}

// responseChecker validates responses against the served document: the
// status must be documented for the operation and the body must match its
// schema.
type responseChecker struct {
	once   sync.Once
	router routers.Router
}

func (c *responseChecker) check(t *testing.T, baseURL string, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	c.once.Do(func() {
		doc := loadOpenAPI(t, httpapi.OpenAPI(), baseURL)
		router, err := legacy.NewRouter(doc)
		if err != nil {
			t.Fatal(err)
		}
		c.router = router
	})
	route, pathParams, err := c.router.FindRoute(req)
	if err != nil {
		t.Errorf("%s %s is not in the document: %v", req.Method, req.URL.Path, err)
		return
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: status, Header: header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	input.SetBodyBytes(bytes.Clone(body))
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		t.Errorf("%s %s answered %d, which the document does not allow: %v\nbody: %.300s", req.Method, req.URL, status, err, body)
	}
}

// alwaysReady is the readiness of a test server whose parts all run.
func alwaysReady(context.Context) httpapi.ReadinessReport {
	return httpapi.ReadinessReport{Ready: true}
}
