"""Markup that would run if a record's HTML let it: the payloads a change manager's
browser met in issue #18 (five of six fired ``alert()`` under the old regular-expression
cleaning), and html5sec-style vectors (https://html5sec.org): SVG and MathML, CSS, meta
refresh, base, objects, forms, animation events.

Each payload either calls ``alert()`` (a dialog a browser test listens for) or sets
``window.__ran`` (read back after the page loaded)."""

from __future__ import annotations

PAYLOADS: dict[str, str] = {
    "split script": "<scr<script></script>ipt>alert(1)</script>",
    "img onerror, slash": '<img src="x"/onerror=alert(1)>',
    "> in a quoted attribute": '<img alt="a>" src=x onerror=alert(1)><div title="</div>'
                               '<script>alert(1)</script>">t</div>',
    "javascript: link": '<a href="javascript:alert(1)">click</a>'
                        '<a href="jav&#x09;ascript:alert(1)">tab</a>',
    "iframe srcdoc": '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "svg onload": "<svg onload=alert(1)><circle r=5 /></svg>",
    "svg script": "<svg><script>window.__ran=1</script></svg>",
    "svg animate": "<svg><animate onbegin=alert(1) attributeName=x dur=1s></animate>"
                   '<a xlink:href="javascript:alert(1)"><text y=20>x</text></a></svg>',
    "math xlink": '<math><maction actiontype="statusline" xlink:href="javascript:alert(1)">'
                  "m</maction></math>",
    "style expression": '<div style="width:expression(alert(1));background:url('
                        'javascript:alert(1))">s</div><style>@import "http://example.'
                        'invalid/x.css";</style>',
    "meta refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "base href": '<base href="javascript:alert(1)//">',
    "object data": '<object data="data:text/html,<script>alert(1)</script>"></object>'
                   '<embed src="data:text/html,<script>alert(1)</script>">',
    "data:text/html link": '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2Ny'
                           'aXB0Pg==">d</a>',
    "form action": '<form action="javascript:alert(1)"><button formaction="javascript:'
                   'alert(1)">f</button><input type=image src=x onerror=alert(1)></form>',
    "details ontoggle": "<details open ontoggle=alert(1)><summary>s</summary></details>",
    "body onload": "<body onload=alert(1)>",
    "remote stylesheet": '<link rel=stylesheet href="http://example.invalid/x.css">',
    "img sets a flag": "<img src=x onerror=window.__ran=1>",
    # a style that would end the page's <style> element if it were moved there
    "style breakout": "<p style=\"color:red;font-family:'</style><script>alert(1)</script>'\">"
                      "b</p><p style='color:red;font-family:\"</style><img src=x onerror="
                      "alert(1)>\"'>b</p>",
}

#: All of them, one after the other (a parameter, an action's output, a Markdown cell).
ALL = "".join(PAYLOADS.values())
