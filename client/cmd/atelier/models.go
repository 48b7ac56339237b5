package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// jsonOpts renders API messages as JSON with the proto's field names.
var jsonOpts = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true, Multiline: true, Indent: "  "}

func modelsCmd(fs *flag.FlagSet) func(context.Context, *app, []string) error {
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) > 0 {
			return usagef("models takes no arguments, got %q", args)
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		sts, err := c.ModelStatus(ctx, "")
		if err != nil {
			return err
		}
		return printStatus(a, sts)
	}
}

func describeCmd(fs *flag.FlagSet) func(context.Context, *app, []string) error {
	version := fs.Int64("version", 0, "describe only this version (0: every loaded version)")
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) != 1 {
			return usagef("describe takes one model name, got %d arguments", len(args))
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		m, err := c.GetModel(ctx, args[0], *version)
		if err != nil {
			return err
		}
		if m == nil { // a broken server's answer: without this check, a crash below
			return status.Errorf(codes.Internal, "the server answered GetModel %s without a model", args[0])
		}
		switch a.output {
		case "json":
			b, err := jsonOpts.Marshal(m)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.env.stdout, string(b))
			return err
		case "csv":
			o := newOut("csv", a.env.stdout, nil, []string{"name", "role", "version", "signature", "io", "tensor", "dtype", "shape"})
			for _, v := range m.Versions {
				for _, s := range v.Signatures {
					for _, io := range []struct {
						kind    string
						tensors []*pb.TensorSpec
					}{{"input", s.Inputs}, {"output", s.Outputs}} {
						for _, t := range io.tensors {
							o.record(nil, nil, [][]string{{m.Name, roleName(m.Role), strconv.FormatInt(v.Version, 10),
								s.Name, io.kind, t.Name, t.Dtype, shape(t.Shape)}})
						}
					}
				}
			}
			return o.close()
		}
		w, q := a.env.stdout, cleanCell // the server's names, safe for a terminal
		fmt.Fprintf(w, "model %s (%s)\n", q(m.Name), roleName(m.Role))
		for _, v := range m.Versions {
			fmt.Fprintf(w, "version %d\n", v.Version)
			if v.Precision != "" {
				fmt.Fprintf(w, "  precision %s%s\n", q(v.Precision), belowBatch(v.Bf16MinBatch))
			}
			for _, s := range v.Signatures {
				fmt.Fprintf(w, "  signature %s\n", q(s.Name))
				for _, t := range s.Inputs {
					fmt.Fprintf(w, "    input  %-22s %-8s %s\n", q(t.Name), q(t.Dtype), shape(t.Shape))
				}
				for _, t := range s.Outputs {
					fmt.Fprintf(w, "    output %-22s %-8s %s\n", q(t.Name), q(t.Dtype), shape(t.Shape))
				}
			}
			if len(v.Labels) > 0 {
				fmt.Fprintf(w, "  labels (%d): %s\n", len(v.Labels), q(strings.Join(v.Labels, ", ")))
			}
		}
		return nil
	}
}

// belowBatch describes a bf16 version that runs small batches in fp32.
func belowBatch(minBatch int32) string {
	if minBatch <= 1 {
		return ""
	}
	return fmt.Sprintf(" from batch %d (fp32 below)", minBatch)
}

func healthCmd(fs *flag.FlagSet) func(context.Context, *app, []string) error {
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) > 1 {
			return usagef("health takes at most one service name, got %d", len(args))
		}
		service := ""
		if len(args) == 1 {
			service = args[0]
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		st, err := c.Health(ctx, service)
		if err != nil {
			return err
		}
		switch a.output {
		case "json":
			writeJSON(a.env.stdout, map[string]string{"service": service, "status": st.String()})
		case "csv":
			o := newOut("csv", a.env.stdout, nil, []string{"service", "status"})
			o.record(nil, nil, [][]string{{service, st.String()}})
			o.close()
		default:
			fmt.Fprintln(a.env.stdout, st)
		}
		if st != healthpb.HealthCheckResponse_SERVING {
			return codedError{"NOT_SERVING", "the server reports " + st.String()}
		}
		return nil
	}
}

// roleName is a role without its enum prefix: classifier, detector, generator.
func roleName(r pb.ModelRole) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "MODEL_ROLE_"))
}

// shape renders [-1, 28, 28, 1] as "[-1,28,28,1]".
func shape(dims []int64) string {
	s := make([]string, len(dims))
	for i, d := range dims {
		s[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(s, ",") + "]"
}
