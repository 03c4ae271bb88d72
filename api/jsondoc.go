package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// decodeDocument decodes one JSON document into v strictly: besides the
// unknown fields encoding/json refuses when asked, it refuses a key given
// twice in one object (the last would win unseen) and a key that names a
// field only when case is ignored ("Text" for "text"). The error says
// what is wrong in words a client can act on.
func decodeDocument(data []byte, v any) error {
	if err := checkKeys(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(describeJSONError(err))
	}
	if dec.More() {
		return errors.New("it holds more than one JSON document; send exactly one")
	}
	return nil
}

func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("invalid JSON at byte %d (%v)", syntax.Offset, syntax)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be %s, not a JSON %s", typ.Field, shapeOf(typ.Type), typ.Value)
		}
		return fmt.Sprintf("expected %s, not a JSON %s", shapeOf(typ.Type), typ.Value)
	}
	return err.Error()
}

// shapeOf names the JSON a Go type is read from, as a client writes it.
func shapeOf(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	case reflect.String:
		return "a JSON string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another JSON value"
}

// keyError is a key checkKeys refuses.
type keyError struct{ msg string }

func (e *keyError) Error() string { return e.msg }

// checkKeys walks the document beside the Go type it decodes into and
// refuses duplicate keys and keys differing from a field only by case.
// Anything else wrong (bad syntax, wrong types, unknown keys) is left to
// the decoder, which says it better.
func checkKeys(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var ke *keyError
	if err := walkValue(dec, t, ""); errors.As(err, &ke) {
		return ke
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// decodedAs is the type a JSON value is read into for checking: pointers
// followed, nil for a type that reads itself in a way not known here.
func decodedAs(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || !reflect.PointerTo(t).Implements(unmarshalerType) {
		return t
	}
	// A list that reads itself accepts one element or a list of them
	// (schemas.FieldSource, schemas.Conditions): check it as its elements.
	if t.Kind() == reflect.Slice {
		return t
	}
	return nil
}

func walkValue(dec *json.Decoder, t reflect.Type, path string) error {
	t = decodedAs(t)
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		if t != nil && t.Kind() == reflect.Slice && reflect.PointerTo(t).Implements(unmarshalerType) {
			t = t.Elem() // one element given alone
		}
		return walkObject(dec, decodedAs(t), path)
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walkValue(dec, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	}
	return nil
}

func walkObject(dec *json.Decoder, t reflect.Type, path string) error {
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = map[string]reflect.Type{}
		jsonFields(t, fields)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		where := "the document"
		if path != "" {
			where = strings.TrimPrefix(path, ".")
		}
		if seen[key] {
			return &keyError{fmt.Sprintf("key %q is given twice in %s; give each key once", key, where)}
		}
		seen[key] = true
		var next reflect.Type
		switch {
		case fields != nil:
			ft, ok := fields[key]
			if !ok {
				for name := range fields {
					if strings.EqualFold(name, key) {
						return &keyError{fmt.Sprintf("key %q in %s is not a field; the field is %q (keys are case-sensitive)", key, where, name)}
					}
				}
			}
			next = ft
		case t != nil && t.Kind() == reflect.Map:
			next = t.Elem()
		}
		if err := walkValue(dec, next, path+"."+key); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return err
}

// jsonFields gathers the JSON names of a struct's fields, with those of
// embedded structs, as encoding/json reads them.
func jsonFields(t reflect.Type, into map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			jsonFields(ft, into)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		into[name] = f.Type
	}
}
