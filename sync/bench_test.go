package sync

import (
	"fmt"
	"testing"

	"github.com/ptsync/ptsync/internal/config"
	"github.com/ptsync/ptsync/sources"
)

// Phone mixes of a benchmark directory: how its phones are written decides
// how many go through the phone library (see NormalizePhone).
const (
	phonesMixed     = "mixed"     // a third E.164, a third US formatted, a third UK formatted
	phonesE164      = "e164"      // every phone North American E.164 already
	phonesFormatted = "formatted" // none in E.164: US and UK formatted, half each
)

// benchScale builds a directory of users people in teams groups of ten
// and a PagerTree account that matches it except for one user in a hundred
// (a changed phone, a missing account) and one team in a hundred (renamed,
// one member short). phones is one of the phone mixes.
func benchScale(users, teams int, phones string) ([]*sources.Snapshot, Current, Policy) {
	snap := sources.NewSnapshot("corp")
	var cur Current
	for i := range users {
		id := fmt.Sprintf("u%06d", i)
		email := fmt.Sprintf("user%06d@example.com", i)
		// phone is the E.164 form PagerTree holds, raw what the directory says.
		phone := fmt.Sprintf("+1415%07d", i)
		raw := phone
		style := i % 3
		switch phones {
		case phonesE164:
			style = 0
		case phonesFormatted:
			style = 1 + i%2
		}
		switch style {
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
	snaps, cur, pol := benchScale(100_000, 10_000, phonesMixed)
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

// BenchmarkBuildDesired turns the same directory into the desired state,
// once per phone mix: parsing phones is most of its cost.
func BenchmarkBuildDesired(b *testing.B) {
	for _, phones := range []string{phonesMixed, phonesE164, phonesFormatted} {
		b.Run(phones, func(b *testing.B) {
			snaps, _, pol := benchScale(100_000, 10_000, phones)
			for b.Loop() {
				if _, err := BuildDesired(snaps, pol); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
