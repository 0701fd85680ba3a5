package config

import "reflect"

// WithoutSecrets returns a deep copy of c with every secret and its *_file
// twin blanked (the keys tagged `config:"secret"`, in the top-level schema
// and in every source's settings): what may be hashed or shown of a
// configuration. c is not changed.
func (c *Config) WithoutSecrets() *Config {
	cp := deepCopy(reflect.ValueOf(c)).Interface().(*Config)
	for _, s := range cp.fileKeys().secrets {
		*s.value, *s.file = "", ""
	}
	return cp
}

// deepCopy copies v and everything its exported fields reach, so that
// writing through the copy never changes the original. Unexported fields
// (Config's positions and source types) are shared: nothing writes them.
func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(deepCopy(v.Elem()))
		return out
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(deepCopy(v.Elem()))
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := range v.NumField() {
			if out.Field(i).CanSet() {
				out.Field(i).Set(deepCopy(v.Field(i)))
			}
		}
		return out
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(deepCopy(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), deepCopy(it.Value()))
		}
		return out
	}
	return v
}
