package template

// Kind names a directive. The names are Cog's, so directives read the same
// as the ones Cog's renderers took.
type Kind string

// Block directives.
const (
	Paragraph     Kind = "paragraph"         // Children: inline directives
	Header        Kind = "header"            // Children: inline; Level 1 (from ~title~)
	CodeBlock     Kind = "fixed_width_block" // Text: the lines, verbatim
	UnorderedList Kind = "unordered_list"    // Children: list items
	OrderedList   Kind = "ordered_list"      // Children: list items
	ListItem      Kind = "list_item"         // Children: inline, then any nested lists
	Table         Kind = "table"             // Children: one table_header, then table_rows
	TableHeader   Kind = "table_header"      // Children: table cells
	TableRow      Kind = "table_row"         // Children: table cells
	TableCell     Kind = "table_cell"        // Children: inline
	Attachment    Kind = "attachment"        // Children: blocks; Attachment: its attributes
)

// Inline directives.
const (
	Text    Kind = "text"        // Text, shown as it is: never markup on any provider
	Bold    Kind = "bold"        // Children: inline
	Italics Kind = "italics"     // Children: inline
	Code    Kind = "fixed_width" // Text
	Link    Kind = "link"        // Children: inline (the link's text); URL
	Newline Kind = "newline"     // a line break inside a paragraph, list item or cell
)

// Directive is one provider-neutral piece of a rendered template: what a
// template means, before any provider's markup. Every Text is data to
// show; a renderer escapes it for its provider.
type Directive struct {
	Kind       Kind            `json:"name"`
	Text       string          `json:"text,omitempty"`
	URL        string          `json:"url,omitempty"`
	Level      int             `json:"level,omitempty"`
	Children   []Directive     `json:"children,omitempty"`
	Attachment *AttachmentInfo `json:"attachment,omitempty"`
}

// AttachmentInfo holds the attributes of an ~attachment~, after Slack's
// attachments, which Greenbar's were modelled on. Attributes it does not
// know become Fields, in the order written; a name ending in -short makes
// a short field (shown side by side where the provider can).
type AttachmentInfo struct {
	Title      string  `json:"title,omitempty"`
	TitleURL   string  `json:"title_url,omitempty"`
	Color      string  `json:"color,omitempty"` // as written: a CSS colour name or #hex (see ColorHex)
	Pretext    string  `json:"pretext,omitempty"`
	Fallback   string  `json:"fallback,omitempty"`
	ImageURL   string  `json:"image_url,omitempty"`
	ThumbURL   string  `json:"thumb_url,omitempty"`
	Author     string  `json:"author,omitempty"`
	AuthorLink string  `json:"author_link,omitempty"`
	AuthorIcon string  `json:"author_icon,omitempty"`
	Footer     string  `json:"footer,omitempty"`
	FooterIcon string  `json:"footer_icon,omitempty"`
	Timestamp  string  `json:"ts,omitempty"`
	Fields     []Field `json:"fields,omitempty"`
}

// Field is a custom attachment field.
type Field struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short,omitempty"`
}

// Document is a rendered template: its blocks in order.
type Document []Directive

// PlainText is the text of inline directives without any markup.
func PlainText(ds []Directive) string {
	var b []byte
	var walk func([]Directive)
	walk = func(ds []Directive) {
		for _, d := range ds {
			switch d.Kind {
			case Newline:
				b = append(b, '\n')
			case Text, Code:
				b = append(b, d.Text...)
			default:
				walk(d.Children)
			}
		}
	}
	walk(ds)
	return string(b)
}
