package gui

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// PageSize is how many rows a list page shows; longer lists paginate.
const PageSize = 500

// listQuery is a list page's URL state: it makes every view a deep link.
type listQuery struct {
	Q, Mesh, Sort string
	Desc          bool
	Page          int
}

func parseQuery(r *http.Request) listQuery {
	v := r.URL.Query()
	q := listQuery{Q: strings.TrimSpace(v.Get("q")), Mesh: v.Get("mesh"), Sort: v.Get("sort"), Desc: v.Get("dir") == "desc"}
	q.Page, _ = strconv.Atoi(v.Get("page"))
	if q.Page < 1 {
		q.Page = 1
	}
	return q
}

// url renders the query with changes, for sort and page links.
func (q listQuery) url(path string) string {
	v := url.Values{}
	for k, s := range map[string]string{"q": q.Q, "mesh": q.Mesh, "sort": q.Sort} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Desc {
		v.Set("dir", "desc")
	}
	if q.Page > 1 {
		v.Set("page", strconv.Itoa(q.Page))
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// column is a sortable column header.
type column struct {
	Key, Title string
	URL        string
	Arrow      string
}

// page is one page of a filtered, sorted list.
type page[T any] struct {
	Rows             []T
	Total, Matched   int
	Page, Pages      int
	First, Last      int
	PrevURL, NextURL string
	Columns          []column
	Query            listQuery
	Path             string
}

// paginate filters items by q.Q (case-insensitive substring of text) and
// q.Mesh, sorts them by the column q.Sort, and cuts page q.Page.
func paginate[T any](path string, items []T, q listQuery, cols [][2]string, key func(T, string) string, text func(T) string, mesh func(T) string) page[T] {
	needle := strings.ToLower(q.Q)
	rows := make([]T, 0, len(items))
	for _, it := range items {
		if q.Mesh != "" && mesh(it) != q.Mesh {
			continue
		}
		if needle != "" && !strings.Contains(strings.ToLower(text(it)), needle) {
			continue
		}
		rows = append(rows, it)
	}
	valid := false
	for _, c := range cols {
		valid = valid || c[0] == q.Sort
	}
	if !valid {
		q.Sort = ""
	}
	if q.Sort != "" {
		keys := make([]string, len(rows))
		idx := make([]int, len(rows))
		for i := range rows {
			keys[i], idx[i] = key(rows[i], q.Sort), i
		}
		sort.SliceStable(idx, func(a, b int) bool {
			if q.Desc {
				return keys[idx[a]] > keys[idx[b]]
			}
			return keys[idx[a]] < keys[idx[b]]
		})
		sorted := make([]T, len(rows))
		for i, j := range idx {
			sorted[i] = rows[j]
		}
		rows = sorted
	}
	p := page[T]{Total: len(items), Matched: len(rows), Query: q, Path: path}
	p.Pages = (len(rows) + PageSize - 1) / PageSize
	if p.Pages == 0 {
		p.Pages = 1
	}
	if q.Page > p.Pages {
		q.Page = p.Pages
	}
	p.Page = q.Page
	lo := (q.Page - 1) * PageSize
	hi := min(lo+PageSize, len(rows))
	p.Rows = rows[lo:hi]
	p.First, p.Last = lo+1, hi
	if q.Page > 1 {
		prev := q
		prev.Page--
		p.PrevURL = prev.url(path)
	}
	if q.Page < p.Pages {
		next := q
		next.Page++
		p.NextURL = next.url(path)
	}
	for _, c := range cols {
		cq := q
		cq.Page = 1
		col := column{Key: c[0], Title: c[1]}
		if q.Sort == c[0] {
			cq.Desc = !q.Desc
			col.Arrow = map[bool]string{false: "▲", true: "▼"}[q.Desc]
		} else {
			cq.Sort, cq.Desc = c[0], false
		}
		col.URL = cq.url(path)
		p.Columns = append(p.Columns, col)
	}
	return p
}
