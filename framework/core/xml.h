/* xml.h — text written into XML or HTML (SVG plots, report pages) as character data or a quoted
 * attribute value: & < > " ' become &amp; &lt; &gt; &quot; &#39;, every other byte stays. */
#ifndef DM_CORE_XML_H
#define DM_CORE_XML_H

#include <stdio.h>

/* s escaped to out; NULL writes nothing. */
void dm_xml_put(FILE *out, const char *s);

#endif
