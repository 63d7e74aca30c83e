package telemetry

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/logbookhq/logbook/projections"
)

// trace turns one request's lifecycle into a trace: a root span from its
// receipt to its reply, with children for the decision, each run (its
// queue, its container and its output) and the reply. The spans carry the
// times the log recorded, and the trace id is the request id, so a trace
// is found from the history and the same request always has the same
// trace. Neither the text typed nor the output goes into a span: only
// their sizes.
func (r *Reporter) trace(req *projections.RequestActivity) {
	ctx := context.WithValue(context.Background(), traceIDKey{}, traceIDOf(req.RequestID))
	end := req.EndedAt
	if req.RepliedAt.After(end) {
		end = req.RepliedAt
	}
	ctx, root := r.tracer.Start(ctx, "request", trace.WithTimestamp(req.ReceivedAt), trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("logbook.request_id", req.RequestID),
			attribute.String("logbook.adapter", req.Adapter),
			attribute.String("logbook.room", req.Room),
			attribute.String("logbook.user", req.User),
			attribute.String("logbook.outcome", req.Outcome),
		))
	if req.Outcome != projections.RequestCompleted {
		root.SetStatus(codes.Error, req.Outcome)
	}
	decided := req.DecidedAt
	if decided.IsZero() {
		decided = req.EndedAt
	}
	_, decide := r.tracer.Start(ctx, "decide", trace.WithTimestamp(req.ReceivedAt))
	if len(req.Denied) > 0 {
		decide.SetAttributes(attribute.StringSlice("logbook.denied", req.Denied))
	}
	decide.End(trace.WithTimestamp(decided))
	for _, rn := range req.Runs {
		name := rn.Command
		if rn.Bundle != "" {
			name = rn.Bundle + ":" + rn.Command
		}
		runCtx, span := r.tracer.Start(ctx, "run "+name, trace.WithTimestamp(rn.RequestedAt), trace.WithAttributes(
			attribute.String("logbook.run_id", rn.RunID),
			attribute.Int("logbook.stage", rn.Stage),
			attribute.String("logbook.bundle", rn.Bundle),
			attribute.String("logbook.command", rn.Command),
			attribute.String("logbook.mode", string(rn.Mode)),
			attribute.String("logbook.outcome", rn.Outcome),
			attribute.Int("logbook.output.chunks", rn.OutputChunks),
			attribute.Int64("logbook.output.bytes", rn.OutputBytes),
			attribute.Int("logbook.output.stderr_chunks", rn.StderrChunks),
		))
		if rn.Outcome != projections.RunSucceeded {
			span.SetStatus(codes.Error, rn.Outcome)
		}
		if !rn.StartedAt.IsZero() {
			_, queued := r.tracer.Start(runCtx, "queued", trace.WithTimestamp(rn.RequestedAt))
			queued.End(trace.WithTimestamp(rn.StartedAt))
			_, container := r.tracer.Start(runCtx, "container", trace.WithTimestamp(rn.StartedAt))
			container.End(trace.WithTimestamp(rn.EndedAt))
		}
		if !rn.FirstOutputAt.IsZero() {
			_, output := r.tracer.Start(runCtx, "output", trace.WithTimestamp(rn.FirstOutputAt))
			output.End(trace.WithTimestamp(rn.LastOutputAt))
		}
		span.End(trace.WithTimestamp(rn.EndedAt))
	}
	if !req.RepliedAt.IsZero() {
		_, reply := r.tracer.Start(ctx, "reply", trace.WithTimestamp(req.EndedAt))
		reply.End(trace.WithTimestamp(req.RepliedAt))
	}
	root.End(trace.WithTimestamp(end))
}

type traceIDKey struct{}

// traceIDOf is the request id's bytes (a request id is a UUID, the size
// of a trace id), or a digest of it when it is not one.
func traceIDOf(requestID string) trace.TraceID {
	if id, err := uuid.Parse(requestID); err == nil {
		return trace.TraceID(id)
	}
	sum := sha256.Sum256([]byte(requestID))
	var id trace.TraceID
	copy(id[:], sum[:16])
	return id
}

// requestIDs gives each trace its request's id and each span a random id.
type requestIDs struct{}

func (requestIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	id, _ := ctx.Value(traceIDKey{}).(trace.TraceID)
	if !id.IsValid() {
		binary.LittleEndian.PutUint64(id[:8], rand.Uint64())
		binary.LittleEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id, newSpanID()
}

func (requestIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

func newSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		binary.LittleEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}

// TracerFromEnv builds the tracer provider that OTEL_EXPORTER_OTLP_ENDPOINT
// (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) asks for, exporting over OTLP/HTTP
// with the other standard OTEL_* variables; nil when neither is set
// (traces are off by default). Only the http/protobuf protocol is built in.
func TracerFromEnv(ctx context.Context) (*sdktrace.TracerProvider, error) {
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(os.Getenv(name)); p != "" {
			if p != "http/protobuf" {
				return nil, fmt.Errorf("%s=%s: Logbook exports traces over OTLP/HTTP only; set it to http/protobuf or leave it unset", name, p)
			}
			break
		}
	}
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
	}
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", "logbook")), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	return NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res)), nil
}

// NewTracerProvider is a provider whose trace ids are request ids, with
// opts (an exporter, a resource).
func NewTracerProvider(opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithIDGenerator(requestIDs{}), sdktrace.WithSampler(sdktrace.AlwaysSample())}, opts...)...)
}
