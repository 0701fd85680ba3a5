package pagertree

import (
	"encoding/json"
	"slices"
	"testing"
)

func userKey(u User) string { return u.ID }

func FuzzDecodeList(f *testing.F) {
	for _, seed := range []string{
		`{"data":[{"id":"usr_1","name":"Ann","email":"ann@example.com","roles":{}}],"has_more":true,"total_count":250}`,
		`{"data":[],"has_more":false,"total_count":0}`,
		`{"data":[{"id":"usr_1"},{"id":"usr_1"}],"has_more":false,"total_count":2}`,
		`{"data":[{"id":""}],"has_more":false,"total_count":1}`,
		`{"data":null,"has_more":false,"total_count":0}`,
		`{"data":[],"total_count":-1}`,
		`{"data":[]}`,
		`{"total_count":3}`,
		`{"data":{},"total_count":1}`,
		`{"data":[1,2],"total_count":2}`,
		`{"data":[],"has_more":"yes","total_count":0}`,
		`{"data":[],"total_count":1e400}`,
		`null`,
		`{}`,
		`[]`,
		`<html>502 Bad Gateway</html>`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		list, err := decodeList(body, userKey)
		if err != nil {
			return
		}
		if list.Data == nil {
			t.Fatal("decoded a list without a data array")
		}
		if list.TotalCount < 0 {
			t.Fatalf("decoded a negative total_count %d", list.TotalCount)
		}
		for i, u := range list.Data {
			if u.ID == "" {
				t.Fatalf("decoded object %d without an id", i)
			}
		}
		// What was accepted survives a round trip unchanged.
		again, err := json.Marshal(list)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		back, err := decodeList(again, userKey)
		if err != nil {
			t.Fatalf("decoding the re-encoded list: %v", err)
		}
		if back.TotalCount != list.TotalCount || back.HasMore != list.HasMore || !slices.EqualFunc(back.Data, list.Data, func(a, b User) bool { return a == b }) {
			t.Fatalf("round trip changed the list: %+v became %+v", list, back)
		}
	})
}

func TestDecodeList(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    List[User]
		wantErr string
	}{
		{
			name: "page",
			body: `{"data":[{"id":"usr_1","email":"a@example.com"},{"id":"usr_2"}],"has_more":true,"total_count":250}`,
			want: List[User]{Data: []User{{ID: "usr_1", Email: "a@example.com"}, {ID: "usr_2"}}, HasMore: true, TotalCount: 250},
		},
		{name: "empty account", body: `{"data":[],"has_more":false,"total_count":0}`, want: List[User]{Data: []User{}}},
		{name: "has_more missing means false", body: `{"data":[],"total_count":0}`, want: List[User]{Data: []User{}}},
		{name: "null", body: `null`, wantErr: "the list has no data array"},
		{name: "empty object", body: `{}`, wantErr: "the list has no data array"},
		{name: "null data", body: `{"data":null,"total_count":0}`, wantErr: "the list has no data array"},
		{name: "no total_count", body: `{"data":[]}`, wantErr: "the list has no total_count"},
		{name: "negative total_count", body: `{"data":[],"total_count":-1}`, wantErr: "the list's total_count -1 is negative"},
		{name: "object without id", body: `{"data":[{"id":"usr_1"},{"name":"x"}],"total_count":2}`, wantErr: "object 1 of the list has no id"},
		{name: "not JSON", body: `<html>`, wantErr: "invalid character '<' looking for beginning of value"},
		{name: "data not an array", body: `{"data":{},"total_count":1}`, wantErr: "json: cannot unmarshal object into Go struct field .data of type []pagertree.User"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeList([]byte(tt.body), userKey)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			if got.TotalCount != tt.want.TotalCount || got.HasMore != tt.want.HasMore || !slices.Equal(got.Data, tt.want.Data) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTokenText(t *testing.T) {
	tests := []struct {
		name, raw, want, wantErr string
	}{
		{name: "string", raw: `"abc.def"`, want: "abc.def"},
		{name: "number as in the seed", raw: `1`, want: "1"},
		{name: "empty string", raw: `""`, wantErr: "the answer's token is empty"},
		{name: "missing", raw: ``, wantErr: "the answer has no token"},
		{name: "object", raw: `{}`, wantErr: "the answer has no token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tokenText(json.RawMessage(tt.raw))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("tokenText(%s) = %q, %v; want %q", tt.raw, got, err, tt.want)
			}
		})
	}
}
