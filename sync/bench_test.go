package sync

import (
	"fmt"
	"testing"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

// benchScale builds a directory of users people in teams groups of ten
// and a PagerTree account that matches it except for one user in a hundred
// (a changed phone, a missing account) and one team in a hundred (renamed,
// one member short).
func benchScale(users, teams int) ([]*sources.Snapshot, Current, Policy) {
	snap := sources.NewSnapshot("corp")
	var cur Current
	for i := range users {
		id := fmt.Sprintf("u%06d", i)
		email := fmt.Sprintf("user%06d@example.com", i)
		// Directories write phones every which way; a third of them in
		// E.164 already, the rest formatted, some outside North America.
		phone := fmt.Sprintf("+1415%07d", i)
		raw := phone
		switch i % 3 {
		case 1:
			raw = fmt.Sprintf("+1 415 %03d %04d", i/10000%1000, i%10000)
		case 2:
			phone = fmt.Sprintf("+44207%07d", i)
			raw = fmt.Sprintf("+44 20 7%03d %04d", i/10000%1000, i%10000)
		}
		snap.Users[id] = sources.User{ID: id, Email: email, Name: "User " + id, Phone: raw}
		if i%100 == 1 {
			continue // a new hire
		}
		if i%100 == 2 {
			phone = "+1 415 000 0000"
		}
		cur.Users = append(cur.Users, AccountUser{ID: "p" + id, Email: email, Name: "User " + id, Phone: phone})
	}
	for g := range teams {
		gid := fmt.Sprintf("g%05d", g)
		group := sources.Group{ID: gid, Name: "oncall-" + gid}
		team := AccountTeam{ID: "t" + gid, Name: gid, Description: Marker{Source: "corp", GroupID: gid}.String()}
		for m := range 10 {
			uid := fmt.Sprintf("u%06d", (g*10+m)%users)
			group.Members = append(group.Members, uid)
			if g%100 != 3 || m != 0 {
				team.MemberIDs = append(team.MemberIDs, "p"+uid)
			}
		}
		if g%100 == 4 {
			team.Name = "old-" + gid
		}
		snap.Groups = append(snap.Groups, group)
		cur.Teams = append(cur.Teams, team)
	}
	pol := Policy{Rules: rules(oncallRuleNamed(`{{ trimPrefix "oncall-" .Name }}`)), DeleteUsers: true}
	return []*sources.Snapshot{snap}, cur, pol
}

func oncallRuleNamed(tmpl string) config.TeamRule {
	r := oncallRule()
	r.Name = tmpl
	return r
}

// BenchmarkMakePlan plans 100,000 users and 10,000 teams in memory (SPEC:
// under one second).
func BenchmarkMakePlan(b *testing.B) {
	snaps, cur, pol := benchScale(100_000, 10_000)
	want, err := BuildDesired(snaps, pol)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		p := MakePlan(cur, want, pol)
		if len(p.Changes) == 0 {
			b.Fatal("empty plan")
		}
	}
}

// BenchmarkBuildDesired turns the same directory into the desired state.
func BenchmarkBuildDesired(b *testing.B) {
	snaps, _, pol := benchScale(100_000, 10_000)
	for b.Loop() {
		if _, err := BuildDesired(snaps, pol); err != nil {
			b.Fatal(err)
		}
	}
}
