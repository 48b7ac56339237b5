package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/atelier-vision/atelier/client"
	pb "github.com/atelier-vision/atelier/proto/atelier/v1"
)

// adminToken binds --admin-token-file (default $ATELIER_ADMIN_TOKEN_FILE) and returns
// a function that reads the token ($ATELIER_ADMIN_TOKEN wins when set).
func adminToken(fs *flag.FlagSet) func(a *app) (string, error) {
	file := fs.String("admin-token-file", "", "file whose first line is the admin token [$ATELIER_ADMIN_TOKEN_FILE; or the token itself in $ATELIER_ADMIN_TOKEN]")
	return func(a *app) (string, error) {
		e := a.env
		if t := e.getenv("ATELIER_ADMIN_TOKEN"); t != "" && *file == "" {
			return t, nil
		}
		path := *file
		if path == "" {
			path = e.getenv("ATELIER_ADMIN_TOKEN_FILE")
		}
		if path == "" {
			return "", nil // the server answers UNAUTHENTICATED, which says what to send
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", usagef("--admin-token-file: %v", err)
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		return strings.TrimSpace(first), nil
	}
}

func adminCtx(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return client.AdminContext(ctx, token)
}

func reloadCmd(fs *flag.FlagSet) func(context.Context, *app, []string) error {
	token := adminToken(fs)
	noWait := fs.Bool("no-wait", false, "answer at once instead of when the loads the rescan started have ended")
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) > 0 {
			return usagef("reload takes no arguments, got %q", args)
		}
		tok, err := token(a)
		if err != nil {
			return err
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		sts, err := c.ReloadRepository(adminCtx(ctx, tok), !*noWait)
		if err != nil {
			return err
		}
		return printStatus(a, sts)
	}
}

func labelCmd(fs *flag.FlagSet) func(context.Context, *app, []string) error {
	token := adminToken(fs)
	return func(ctx context.Context, a *app, args []string) error {
		if len(args) < 3 || args[0] != "set" {
			return usagef("want `label set MODEL LABEL=VERSION ...` (VERSION 0 removes the label)")
		}
		labels := map[string]int64{}
		for _, kv := range args[2:] {
			k, v, ok := strings.Cut(kv, "=")
			n, err := strconv.ParseInt(v, 10, 64)
			if !ok || k == "" || err != nil || n < 0 {
				return usagef("%q: want LABEL=VERSION, for example stable=3", kv)
			}
			labels[k] = n
		}
		tok, err := token(a)
		if err != nil {
			return err
		}
		c, err := a.connect()
		if err != nil {
			return err
		}
		got, err := c.SetVersionLabels(adminCtx(ctx, tok), args[1], labels)
		if err != nil {
			return err
		}
		if a.output == "json" {
			writeJSON(a.env.stdout, map[string]any{"name": args[1], "version_labels": got})
			return nil
		}
		fmt.Fprintf(a.env.stdout, "%s %s\n", cleanCell(args[1]), cleanCell(labelString(got)))
		return nil
	}
}

// printStatus prints models' lifecycle: one row per model, every version with its state.
func printStatus(a *app, sts []*pb.ModelStatus) error {
	if a.output == "json" {
		b, err := jsonOpts.Marshal(&pb.GetModelStatusResponse{Models: sts})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(a.env.stdout, string(b))
		return err
	}
	o := newOut(a.output, a.env.stdout, []string{"NAME", "ROLE", "POLICY", "VERSIONS", "LABELS"},
		[]string{"name", "role", "policy", "versions", "labels"})
	for _, m := range sts {
		var versions []string
		for _, v := range m.Versions {
			s := fmt.Sprintf("%d:%s", v.Version, strings.TrimPrefix(v.State.String(), "VERSION_STATE_"))
			if v.Pinned {
				s += "(pinned)"
			}
			versions = append(versions, s)
		}
		row := []string{m.Name, roleName(m.Role), m.Policy, strings.Join(versions, " "), labelString(m.VersionLabels)}
		o.record(nil, [][]string{row}, [][]string{row})
		for _, v := range m.Versions {
			if v.Error != "" && a.output == "table" {
				fmt.Fprintf(a.env.stderr, "%s:%d FAILED: %s\n", cleanCell(m.Name), v.Version, cleanCell(v.Error))
			}
		}
	}
	return o.close()
}

// labelString renders labels as "canary=4 stable=3", or "-".
func labelString(labels map[string]int64) string {
	if len(labels) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, labels[k])
	}
	return strings.Join(parts, " ")
}
