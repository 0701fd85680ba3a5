package slapd

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

// Population is a generated directory of many users and groups.
type Population struct {
	Users int
	// Groups are groupOfNames; each has MembersPerGroup members.
	Groups          int
	MembersPerGroup int
}

// UserDN is the DN of generated user i (0-based).
func UserDN(i int) string { return fmt.Sprintf("uid=%s,%s", UserUID(i), PeopleDN) }

// UserUID is the login name of generated user i.
func UserUID(i int) string { return fmt.Sprintf("user%06d", i) }

// UserEmail is the email of generated user i.
func UserEmail(i int) string { return UserUID(i) + "@example.com" }

// GroupName is the cn of generated group g.
func GroupName(g int) string { return fmt.Sprintf("group%05d", g) }

// GroupMember is the index of the j-th member of generated group g: the
// groups walk the users in consecutive runs, so every user is in some
// group when Groups*MembersPerGroup >= Users.
func (p Population) GroupMember(g, j int) int {
	return (g*p.MembersPerGroup + j) % p.Users
}

// WriteLDIFFile writes p as LDIF to the file at path (see WriteLDIF).
func (p Population) WriteLDIFFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := p.WriteLDIF(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteLDIF writes p as LDIF for slapadd: users under PeopleDN with uid,
// cn, sn, displayName, mail and telephoneNumber, groups under GroupsDN.
func (p Population) WriteLDIF(w io.Writer) error {
	if p.Groups > 0 && (p.Users == 0 || p.MembersPerGroup == 0 || p.MembersPerGroup > p.Users) {
		return fmt.Errorf("population: groups need 1..%d members each, got %d", p.Users, p.MembersPerGroup)
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	for i := range p.Users {
		uid := UserUID(i)
		fmt.Fprintf(bw, "dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: User %06d\nsn: %06d\ndisplayName: User %06d\nmail: %s\ntelephoneNumber: +1 415 555 %04d\n\n",
			UserDN(i), uid, i, i, i, UserEmail(i), i%10000)
	}
	for g := range p.Groups {
		fmt.Fprintf(bw, "dn: cn=%s,%s\nobjectClass: groupOfNames\ncn: %s\ndescription: generated group %d\n", GroupName(g), GroupsDN, GroupName(g), g)
		for j := range p.MembersPerGroup {
			fmt.Fprintf(bw, "member: %s\n", UserDN(p.GroupMember(g, j)))
		}
		bw.WriteString("\n")
	}
	return bw.Flush()
}
