package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The OpenAPI document is built from Routes, and each body's schema from
// the Go type the handler encodes or decodes, so what the document says
// and what the server does come from the same place.

// OpenAPIVersion is the OpenAPI version the document follows.
const OpenAPIVersion = "3.0.3"

var openAPIDoc struct {
	once sync.Once
	doc  []byte
}

// OpenAPI returns the document describing Routes, as JSON.
func OpenAPI() []byte {
	openAPIDoc.once.Do(func() {
		doc, err := json.MarshalIndent(buildOpenAPI(Routes()), "", "  ")
		if err != nil {
			panic(err) // maps of strings and schemas always encode
		}
		openAPIDoc.doc = append(doc, '\n')
	})
	return openAPIDoc.doc
}

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(OpenAPI())
}

type object = map[string]any

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

func buildOpenAPI(routes []Route) object {
	schemas := &schemaSet{components: object{}, names: map[reflect.Type]string{}}
	paths := object{}
	for _, r := range routes {
		op := object{
			"summary":     r.Summary,
			"operationId": operationID(r),
			"responses":   responsesOf(r, schemas),
		}
		if r.Description != "" || r.Permission != "" {
			description := r.Description
			if r.Permission != "" {
				description = strings.TrimSpace(description + "\n\nNeeds the " + r.Permission + " permission (or logbook:admin).")
			}
			op["description"] = description
		}
		if r.Public {
			op["security"] = []any{}
		}
		var params []any
		for _, p := range r.PathParams {
			p.Required = true
			params = append(params, paramObject(p, "path"))
		}
		for _, p := range r.Query {
			params = append(params, paramObject(p, "query"))
		}
		for _, p := range r.Headers {
			params = append(params, paramObject(p, "header"))
		}
		if params != nil {
			op["parameters"] = params
		}
		if r.Body != nil {
			op["requestBody"] = object{
				"required":    true,
				"description": "A JSON object of at most 64 KiB; unknown fields are refused.",
				"content":     object{"application/json": object{"schema": schemas.of(reflect.TypeOf(r.Body))}},
			}
		}
		item, _ := paths[r.Path].(object)
		if item == nil {
			item = object{}
			paths[r.Path] = item
		}
		item[strings.ToLower(r.Method)] = op
	}
	return object{
		"openapi": OpenAPIVersion,
		"info": object{
			"title":       "Logbook API",
			"version":     "1",
			"description": "Logbook's HTTP API. Reads come from the views; every change is an appended event whose actor is the token's user.",
		},
		"servers":  []any{object{"url": "/"}},
		"security": []any{object{"bearer": []any{}}},
		"paths":    paths,
		"components": object{
			"schemas": schemas.components,
			"securitySchemes": object{
				"bearer": object{"type": "http", "scheme": "bearer", "description": "An API token issued by `user token` (only its SHA-256 is stored)."},
			},
		},
	}
}

// operationID is the method and path in camel case: getV1RunsIdTranscript.
func operationID(r Route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(r.Method))
	for _, part := range strings.FieldsFunc(r.Path, func(c rune) bool { return c == '/' || c == '{' || c == '}' || c == '.' || c == '_' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

func paramObject(p Param, in string) object {
	schema := object{"type": p.Type}
	if p.Format != "" {
		schema["format"] = p.Format
	}
	if len(p.Enum) > 0 {
		enum := make([]any, len(p.Enum))
		for i, v := range p.Enum {
			enum[i] = v
		}
		schema["enum"] = enum
	}
	return object{"name": p.Name, "in": in, "required": p.Required, "description": p.Description, "schema": schema}
}

func responsesOf(r Route, schemas *schemaSet) object {
	out := object{}
	all := r.Responses
	if !r.Public {
		all = append(all,
			errorResponse(http.StatusUnauthorized, "No token, or one that is not valid. The body says only that."),
			errorResponse(http.StatusServiceUnavailable, "The server is starting, or the store or a view cannot be read; the error says which."))
	}
	for _, resp := range all {
		content := object{}
		if resp.JSON != nil {
			content["application/json"] = object{"schema": schemas.of(reflect.TypeOf(resp.JSON))}
		}
		if resp.Text {
			content["text/plain"] = object{"schema": object{"type": "string"}}
		}
		if resp.EventStream {
			content["text/event-stream"] = object{"schema": object{"type": "string",
				"description": "Server-Sent Events: `chunk` (id = seq, data = ChunkView) and a last `end` (data = TranscriptEnd)."}}
		}
		o := object{"description": resp.Description}
		if len(content) > 0 {
			o["content"] = content
		}
		out[strconv.Itoa(resp.Status)] = o
	}
	return out
}

// schemaSet turns Go types into JSON Schemas the way encoding/json encodes
// them; named structs become components, referenced by name.
type schemaSet struct {
	components object
	names      map[reflect.Type]string
}

var (
	timeType    = reflect.TypeFor[time.Time]()
	rawJSONType = reflect.TypeFor[json.RawMessage]()
	bytesType   = reflect.TypeFor[[]byte]()
	marshaler   = reflect.TypeFor[json.Marshaler]()
)

func (s *schemaSet) of(t reflect.Type) object {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return object{"type": "string", "format": "date-time"}
	case t == rawJSONType:
		return object{"description": "Any JSON value."}
	case t == bytesType:
		return object{"type": "string", "format": "byte"}
	case t.Implements(marshaler) || reflect.PointerTo(t).Implements(marshaler):
		return object{"description": "Any JSON value (" + t.String() + " encodes itself)."}
	}
	switch t.Kind() {
	case reflect.String:
		return object{"type": "string"}
	case reflect.Bool:
		return object{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return object{"type": "integer"}
	case reflect.Int64, reflect.Uint64:
		return object{"type": "integer", "format": "int64"}
	case reflect.Float32, reflect.Float64:
		return object{"type": "number"}
	case reflect.Slice, reflect.Array:
		return object{"type": "array", "items": s.of(t.Elem())}
	case reflect.Map:
		return object{"type": "object", "additionalProperties": s.of(t.Elem())}
	case reflect.Interface:
		return object{"description": "Any JSON value."}
	case reflect.Struct:
		return s.ref(t)
	}
	return object{}
}

func (s *schemaSet) ref(t reflect.Type) object {
	if t.Name() == "" {
		return s.structSchema(t)
	}
	name, ok := s.names[t]
	if !ok {
		name = exportedName(t.Name())
		for taken := true; taken; {
			taken = false
			for other, n := range s.names {
				if n == name && other != t {
					name, taken = pkgName(t)+name, true
					break
				}
			}
		}
		s.names[t] = name
		s.components[name] = object{} // reserve it for recursive types
		s.components[name] = s.structSchema(t)
	}
	return object{"$ref": "#/components/schemas/" + name}
}

func exportedName(n string) string { return strings.ToUpper(n[:1]) + n[1:] }

func pkgName(t reflect.Type) string {
	path := t.PkgPath()
	return exportedName(path[strings.LastIndex(path, "/")+1:])
}

// structSchema lists the fields encoding/json writes: by their json name,
// embedded structs' fields inline, "-" left out, and those without
// omitempty required.
func (s *schemaSet) structSchema(t reflect.Type) object {
	props := object{}
	var required []any
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			schema := s.of(f.Type)
			if f.Type.Kind() == reflect.Pointer || f.Type.Kind() == reflect.Slice && f.Type != bytesType && f.Type != rawJSONType {
				if !strings.Contains(opts, "omitempty") {
					schema = nullable(schema)
				}
			}
			props[name] = schema
			if !strings.Contains(opts, "omitempty") {
				required = append(required, name)
			}
		}
	}
	walk(t)
	out := object{"type": "object", "properties": props}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

// nullable marks a schema as also allowing null (a nil slice or pointer
// encodes as null); a reference is wrapped, since 3.0 ignores siblings of
// $ref.
func nullable(schema object) object {
	if _, ok := schema["$ref"]; ok {
		return object{"allOf": []any{schema}, "nullable": true}
	}
	out := object{"nullable": true}
	for k, v := range schema {
		out[k] = v
	}
	return out
}
