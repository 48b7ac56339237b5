// Package kubernetes_test checks the manifests in deploy/kubernetes and the container
// build in deploy/Containerfile against the Kubernetes API types and the real
// atelierd: every document decodes strictly (an unknown or misspelt field is an
// error), and the probes, ports, flags and users agree with the binary.
package kubernetes_test

import (
	"errors"
	"fmt"
	"path/filepath"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/atelier-vision/atelier/deploy/manifest"
)

// kinds are the API types the manifests may use; any other kind is an error.
var kinds = manifest.Kinds{
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

// decodeAll decodes a YAML stream strictly into the API types of kinds.
func decodeAll(source string, data []byte) ([]manifest.Object, error) {
	return manifest.Decode(source, data, kinds)
}

func decodeFile(path string) ([]manifest.Object, error) {
	return manifest.DecodeFile(path, kinds)
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

func newSet(objs []manifest.Object) (*set, error) {
	s := &set{map[string]*appsv1.Deployment{}, map[string]*corev1.Service{}, map[string]*corev1.ConfigMap{},
		map[string]*corev1.PersistentVolumeClaim{}, map[string]*policyv1.PodDisruptionBudget{},
		map[string]*autoscalingv2.HorizontalPodAutoscaler{}}
	for _, o := range objs {
		var name string
		switch v := o.Value.(type) {
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
			return nil, fmt.Errorf("%s: %s is not a cluster object", o.Source, o.Kind)
		}
		if name == "" {
			return nil, fmt.Errorf("%s: %s has no name", o.Source, o.Kind)
		}
	}
	return s, nil
}

// baseFiles returns the resources the base kustomization lists, decoded.
func baseObjects(dir string) ([]manifest.Object, *kustomization, error) {
	objs, err := decodeFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, nil, err
	}
	k := objs[0].Value.(*kustomization)
	var all []manifest.Object
	for _, r := range k.Resources {
		o, err := decodeFile(filepath.Join(dir, r))
		if err != nil {
			return nil, nil, err
		}
		all = append(all, o...)
	}
	return all, k, nil
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
