// Command crdcheck runs the Kubernetes API server's own validation code on Shoal's CRDs
// and custom resources, without an API server, so schema and CEL mistakes (including
// CEL cost-limit violations) show up before a cluster exists.
//
//	crdcheck crd FILE...        validate CRDs as the API server does on create; print each
//	                            rule's estimated cost against the oldest supported CEL env
//	crdcheck cr CRD FILE...     validate custom resources (null pruning, unknown fields,
//	                            schema, list types, CEL with the runtime cost limits);
//	                            one JSON line per document
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	crdvalidation "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/model"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/version"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/yaml"
)

// oldestEnv is the CEL environment of the oldest API server Shoal supports (1.30 compiles
// new expressions with its n-1 environment, 1.29).
var oldestEnv = version.MajorMinor(1, 29)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: crdcheck crd FILE... | crdcheck cr CRD FILE...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "crd":
		err = checkCRDs(os.Args[2:])
	case "cr":
		err = checkResources(os.Args[2], os.Args[3:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crdcheck:", err)
		os.Exit(1)
	}
}

func loadCRD(path string) (*apiextensions.CustomResourceDefinition, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v1 apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &v1); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	apiextensionsv1.SetObjectDefaults_CustomResourceDefinition(&v1)
	var internal apiextensions.CustomResourceDefinition
	err = apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(&v1, &internal, nil)
	return &internal, err
}

func checkCRDs(paths []string) error {
	failed := false
	for _, path := range paths {
		crd, err := loadCRD(path)
		if err != nil {
			return err
		}
		errs := crdvalidation.ValidateCustomResourceDefinition(context.Background(), crd)
		for _, e := range errs {
			failed = true
			fmt.Printf("%s: %v\n", path, e)
		}
		for _, v := range crd.Spec.Versions {
			s := crd.Spec.Validation.OpenAPIV3Schema
			if v.Schema != nil {
				s = v.Schema.OpenAPIV3Schema
			}
			ss, err := structuralschema.NewStructural(s)
			if err != nil {
				return err
			}
			if err := reportCosts(path, ss, true, "", 1); err != nil {
				failed = true
				fmt.Printf("%s: %v\n", path, err)
			}
		}
	}
	if failed {
		return errors.New("invalid CRD")
	}
	return nil
}

// reportCosts compiles every rule with the oldest supported environment and prints its
// estimated cost per call and times the number of objects it may run on.
func reportCosts(path string, s *structuralschema.Structural, root bool, at string, card uint64) error {
	if len(s.XValidations) > 0 {
		envSet := environment.MustBaseEnvSet(oldestEnv)
		results, err := cel.Compile(s, model.SchemaDeclType(s, root), celconfig.PerCallLimit, envSet, cel.NewExpressionsEnvLoader())
		if err != nil {
			return err
		}
		for i, r := range results {
			if r.Error != nil {
				return fmt.Errorf("%s rule %d does not compile on CEL env %s: %s", at, i, oldestEnv, r.Error.Detail)
			}
			fmt.Printf("%s: %s[%d] cost %d x %d = %d  %s\n", path, at, i, r.MaxCost, card, r.MaxCost*card, s.XValidations[i].Rule)
		}
	}
	names := make([]string, 0, len(s.Properties))
	for name := range s.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		child := s.Properties[name]
		if err := reportCosts(path, &child, false, at+"."+name, card); err != nil {
			return err
		}
	}
	if s.Items != nil {
		if err := reportCosts(path, s.Items, false, at+"[]", card*bound(s.ValueValidation, true)); err != nil {
			return err
		}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Structural != nil {
		if err := reportCosts(path, s.AdditionalProperties.Structural, false, at+"{}", card*bound(s.ValueValidation, false)); err != nil {
			return err
		}
	}
	return nil
}

// bound is a list's maxItems or a map's maxProperties; 0 (unknown) counts as 1 here,
// and the API server's own check above applies the real worst case.
func bound(v *structuralschema.ValueValidation, list bool) uint64 {
	if v != nil && list && v.MaxItems != nil {
		return uint64(*v.MaxItems)
	}
	if v != nil && !list && v.MaxProperties != nil {
		return uint64(*v.MaxProperties)
	}
	return 1
}

type result struct {
	Doc     int      `json:"doc"`
	Kind    string   `json:"kind"`
	Name    string   `json:"name"`
	Errors  []string `json:"errors"`
	CELCost int64    `json:"celCost"`
}

func checkResources(crdPath string, paths []string) error {
	crd, err := loadCRD(crdPath)
	if err != nil {
		return err
	}
	s := crd.Spec.Validation.OpenAPIV3Schema
	if v := crd.Spec.Versions[0]; v.Schema != nil {
		s = v.Schema.OpenAPIV3Schema
	}
	ss, err := structuralschema.NewStructural(s)
	if err != nil {
		return err
	}
	validator, _, err := apiservervalidation.NewSchemaValidator(s)
	if err != nil {
		return err
	}
	celValidator := cel.NewValidator(ss, true, celconfig.PerCallLimit)
	out := json.NewEncoder(os.Stdout)
	for _, path := range paths {
		docs, err := readDocs(path)
		if err != nil {
			return err
		}
		for i, obj := range docs {
			if obj["kind"] != crd.Spec.Names.Kind {
				continue
			}
			r := validate(obj, ss, validator, celValidator)
			r.Doc = i
			r.Kind = crd.Spec.Names.Kind
			if meta, ok := obj["metadata"].(map[string]interface{}); ok {
				r.Name, _ = meta["name"].(string)
			}
			if err := out.Encode(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// validate follows the API server's create path for a custom resource.
func validate(obj map[string]interface{}, ss *structuralschema.Structural, validator apiservervalidation.SchemaValidator, celValidator *cel.Validator) result {
	r := result{Errors: []string{}}
	defaulting.PruneNonNullableNullsWithoutDefaults(obj, ss)
	unknown := pruning.PruneWithOptions(obj, ss, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, p := range unknown {
		r.Errors = append(r.Errors, fmt.Sprintf("unknown field %q", p))
	}
	var errs field.ErrorList
	errs = append(errs, apiservervalidation.ValidateCustomResource(nil, obj, validator)...)
	errs = append(errs, listtype.ValidateListSetsAndMaps(nil, ss, obj)...)
	if len(errs) == 0 && celValidator != nil {
		celErrs, remaining := celValidator.Validate(context.Background(), nil, ss, obj, nil, celconfig.RuntimeCELCostBudget)
		errs = append(errs, celErrs...)
		r.CELCost = celconfig.RuntimeCELCostBudget - remaining
	}
	for _, e := range errs {
		r.Errors = append(r.Errors, e.Error())
	}
	return r
}

func readDocs(path string) ([]map[string]interface{}, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var docs []map[string]interface{}
	for {
		var obj map[string]interface{}
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return docs, nil
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if obj != nil {
			docs = append(docs, obj)
		}
	}
}
