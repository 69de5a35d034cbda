/* SPDX-License-Identifier: MIT */
/*
 * A small, bounded XML scanner for the two XML documents connectors read: Salesforce
 * Outbound Messages (SOAP) and SAP OData $metadata (EDMX). It walks elements in place (no
 * allocation, no DTDs, no external entities: nothing to exploit), so a malformed document
 * ends the walk with an error instead of a crash.
 *
 * Invariants: every pointer returned points into the caller's buffer; names keep their
 * namespace prefix (es_xml_is() compares the local part); nesting deeper than 64 is malformed; text
 * is raw until es_xml_text() decodes it.
 */
#ifndef ES_CONNECTORS_HTTP_XML_H
#define ES_CONNECTORS_HTTP_XML_H

#include <stddef.h>

#include "core/buf.h"

struct es_xml_elem {
    const char *name; /* qualified name, e.g. "sf:Name" */
    size_t name_len;
    const char *attrs; /* raw attribute text */
    size_t attrs_len;
    const char *inner; /* content between the tags (empty for <x/>) */
    size_t inner_len;
    const char *next; /* where the walk continues after this element */
};

/* Finds the next element starting at p (before end), skipping text, comments, processing
 * instructions and DOCTYPE. Returns 1 and fills e, 0 at the end of input, -1 when the
 * document is malformed (unclosed tag or element). */
int es_xml_next(const char *p, const char *end, struct es_xml_elem *e);
/* True when the local part of e's name (after any prefix) equals local. */
int es_xml_is(const struct es_xml_elem *e, const char *local);
/* The value of attribute `name` (qualified as written, or by local part). Decoded into out;
 * returns 1 when present. */
int es_xml_attr(const struct es_xml_elem *e, const char *name, struct es_buf *out);
/* Appends the decoded text of s[0..n) (entities &amp; &lt; &gt; &quot; &apos; &#N; &#xN;,
 * CDATA kept) to out. Returns ES_OK, or ES_EINVAL on a bad entity. */
int es_xml_text(const char *s, size_t n, struct es_buf *out);
/* Finds the first descendant element named local (depth-first). Returns 1 when found. */
int es_xml_find(const char *p, const char *end, const char *local, struct es_xml_elem *e);

#endif
