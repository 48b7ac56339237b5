// Package kubernetes_test checks the manifests in deploy/kubernetes and the container
// build in deploy/Containerfile against the Kubernetes API types and the real
// atelierd: every document decodes strictly (an unknown or misspelt field is an
// error), and the probes, ports, flags and users agree with the binary.
package kubernetes_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// kinds are the API types the manifests may use; any other kind is an error.
var kinds = map[string]func() any{
	"apps/v1/Deployment":                            func() any { return &appsv1.Deployment{} },
	"v1/Service":                                    func() any { return &corev1.Service{} },
	"v1/ConfigMap":                                  func() any { return &corev1.ConfigMap{} },
	"v1/PersistentVolumeClaim":                      func() any { return &corev1.PersistentVolumeClaim{} },
	"policy/v1/PodDisruptionBudget":                 func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler":        func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"kustomize.config.k8s.io/v1beta1/Kustomization": func() any { return &kustomization{} },
	"kustomize.config.k8s.io/v1alpha1/Component":    func() any { return &kustomization{} },
}

// kustomization is the part of kustomize's file format these manifests use; a field
// outside it fails the strict decoding like any misspelling would.
type kustomization struct {
	metav1.TypeMeta `json:",inline"`
	Labels          []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors,omitempty"`
		IncludeTemplates bool              `json:"includeTemplates,omitempty"`
	} `json:"labels,omitempty"`
	Resources  []string `json:"resources,omitempty"`
	Components []string `json:"components,omitempty"`
	Patches    []struct {
		Path  string `json:"path,omitempty"`
		Patch string `json:"patch,omitempty"`
	} `json:"patches,omitempty"`
	Images []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images,omitempty"`
}

// object is one decoded document and where it came from.
type object struct {
	source string // file:document
	kind   string // apiVersion/kind
	value  any
}

// decodeAll splits a YAML stream into documents and decodes each strictly into its
// API type.
func decodeAll(source string, data []byte) ([]object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []object
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		where := fmt.Sprintf("%s:%d", source, i)
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		kind := tm.APIVersion + "/" + tm.Kind
		newObj, ok := kinds[kind]
		if !ok {
			return nil, fmt.Errorf("%s: kind %q is not one the manifests may use", where, kind)
		}
		v := newObj()
		if err := yaml.UnmarshalStrict(doc, v); err != nil {
			return nil, fmt.Errorf("%s (%s): %w", where, kind, err)
		}
		out = append(out, object{where, kind, v})
	}
}

func decodeFile(path string) ([]object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decodeAll(path, data)
}

// set is every kind of object of one build of the manifests, by name.
type set struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	pvcs        map[string]*corev1.PersistentVolumeClaim
	pdbs        map[string]*policyv1.PodDisruptionBudget
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
}

func newSet(objs []object) (*set, error) {
	s := &set{map[string]*appsv1.Deployment{}, map[string]*corev1.Service{}, map[string]*corev1.ConfigMap{},
		map[string]*corev1.PersistentVolumeClaim{}, map[string]*policyv1.PodDisruptionBudget{},
		map[string]*autoscalingv2.HorizontalPodAutoscaler{}}
	for _, o := range objs {
		var name string
		switch v := o.value.(type) {
		case *appsv1.Deployment:
			name, s.deployments[v.Name] = v.Name, v
		case *corev1.Service:
			name, s.services[v.Name] = v.Name, v
		case *corev1.ConfigMap:
			name, s.configMaps[v.Name] = v.Name, v
		case *corev1.PersistentVolumeClaim:
			name, s.pvcs[v.Name] = v.Name, v
		case *policyv1.PodDisruptionBudget:
			name, s.pdbs[v.Name] = v.Name, v
		case *autoscalingv2.HorizontalPodAutoscaler:
			name, s.hpas[v.Name] = v.Name, v
		default:
			return nil, fmt.Errorf("%s: %s is not a cluster object", o.source, o.kind)
		}
		if name == "" {
			return nil, fmt.Errorf("%s: %s has no name", o.source, o.kind)
		}
	}
	return s, nil
}

// baseFiles returns the resources the base kustomization lists, decoded.
func baseObjects(dir string) ([]object, *kustomization, error) {
	objs, err := decodeFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, nil, err
	}
	k := objs[0].value.(*kustomization)
	var all []object
	for _, r := range k.Resources {
		o, err := decodeFile(filepath.Join(dir, r))
		if err != nil {
			return nil, nil, err
		}
		all = append(all, o...)
	}
	return all, k, nil
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.Bytes()
}

func metaSelector(d *appsv1.Deployment) (labels.Selector, error) {
	return metaSelectorOf(d.Spec.Selector)
}

func metaSelectorOf(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return nil, errors.New("no selector")
	}
	return metav1.LabelSelectorAsSelector(s)
}
