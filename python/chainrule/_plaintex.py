"""TeX formulas readable without MathJax: a small reader of the TeX that chainrule's rich
displays write, giving Unicode text (``n^{[l]}`` -> ``n[l]``), and the HTML that pairs each
formula with that text (shown where no MathJax typesets the formula)."""

from __future__ import annotations

import html
import re


_PLAIN_COMMANDS = {
    "cdot": " · ", "ast": " ∗ ", "otimes": " ⊗ ", "top": "ᵀ", "le": " ≤ ", "ge": " ≥ ",
    "sigma": "σ", "alpha": "α", "ell": "ℓ", "partial": "∂", "lVert": "‖", "rVert": "‖",
    "Vert": "‖", "tanh": "tanh", "log": "log", "Rightarrow": " ⇒ ", "to": " → ",
    "times": " × ", "sum": "Σ",
    "quad": "  ", "qquad": "    ", ",": " ", ";": " ", ":": " ", "!": "", " ": " ",
    "{": "{", "}": "}", "_": "_", "&": "&", "%": "%", "#": "#",
}
_PLAIN_ARGUMENT = {"mathrm", "operatorname", "text", "mathbf", "textbf", "mathit",
                   "bm", "mathsf", "texttt"}  # \name{x} -> x
_PLAIN_DROP = {"left", "right", "big", "Big", "bigg", "Bigg", "displaystyle", "textstyle",
               "limits", "nolimits"}
_SUPERSCRIPTS = {"2": "²", "3": "³", "T": "ᵀ", "ᵀ": "ᵀ", "-1": "⁻¹"}


class _PlainTeX:
    """A small reader of the TeX this module writes, giving readable Unicode text:
    ``dW^{[1]} = \\boxed{\\tfrac{1}{m}} dZ^{[1]} \\cdot A^{[0]\\top}`` ->
    ``dW[1] = (1/m) dZ[1] · A[0]ᵀ``."""

    def __init__(self, tex):
        self.s, self.i = tex, 0
        self.envs = []

    def group(self):
        """One argument: ``{...}`` or a single token."""
        self.skip_space()
        if self.i < len(self.s) and self.s[self.i] == "{":
            self.i += 1
            return self.sequence(closing="}")
        return self.token()

    def skip_space(self):
        while self.i < len(self.s) and self.s[self.i] == " ":
            self.i += 1

    def sequence(self, closing=None):
        out = []
        while self.i < len(self.s):
            if closing and self.s[self.i] == closing:
                self.i += 1
                break
            out.append(self.token())
        return "".join(out)

    def token(self):
        s = self.s
        if self.i >= len(s):
            return ""
        c = s[self.i]
        self.i += 1
        if c == "{":
            return self.sequence(closing="}")
        if c == "^":
            return _sup(self.group())
        if c == "_":
            return _sub(self.group())
        if c == "&":
            if self.envs and self.envs[-1] in ("bmatrix", "matrix", "pmatrix"):
                return ", "
            return ""
        if c == "~":
            return " "
        if c != "\\":
            return c
        if self.i < len(s) and s[self.i] == "\\":  # a line break
            self.i += 1
            if self.envs and self.envs[-1] in ("bmatrix", "matrix", "pmatrix"):
                return "; "
            return "\n"
        j = self.i
        while j < len(s) and s[j].isalpha():
            j += 1
        name = s[self.i:j] if j > self.i else s[self.i:self.i + 1]
        self.i = j if j > self.i else self.i + 1
        if name in ("lVert", "partial"):
            self.skip_space()  # ‖x‖, ∂Z: the space TeX eats after them
        if name in ("frac", "tfrac", "dfrac"):
            num, den = self.group().strip(), self.group().strip()
            wrap = lambda x: f"({x})" if re.search(r"[ +\-]|^\d+[^\d]", x) else x  # noqa: E731
            return f"{wrap(num)}/{wrap(den)}"
        if name == "boxed":  # the mark of where the 1/m enters: (1/m)
            return f"({self.group().strip()})"
        if name == "sum":
            self.skip_space()
            below = above = ""
            while self.i < len(s) and s[self.i] in "_^":
                kind = s[self.i]
                self.i += 1
                if kind == "_":
                    below = self.group()
                else:
                    above = self.group()
            if below and above:
                return f"Σ({below}..{above}) "
            return f"Σ_{below} " if below else "Σ "
        if name == "begin":
            env = self.group()
            self.envs.append(env)
            return "[" if env in ("bmatrix", "matrix", "pmatrix") else ""
        if name == "end":
            env = self.group()
            if self.envs:
                self.envs.pop()
            return "]" if env in ("bmatrix", "matrix", "pmatrix") else ""
        if name in _PLAIN_ARGUMENT:
            return self.group()
        if name in _PLAIN_DROP:
            return ""
        return _PLAIN_COMMANDS.get(name, name)


def _sup(x):
    x = x.strip()
    if x in _SUPERSCRIPTS:
        return _SUPERSCRIPTS[x]
    if x.startswith("[") or x.startswith("(") or x == "":
        return x
    if x == "prev":
        return "_prev"
    return f"^{x}" if len(x) == 1 else f"^({x})"


def _sub(x):
    x = x.strip()
    if x == "prev" or len(x) == 1 or x.isalnum():
        return f"_{x}"
    return f"[{x}]"


def plain(tex_text):
    """Readable Unicode text for TeX that this module writes, for front-ends without MathJax
    (``n^{[l]}`` -> ``n[l]``, ``\\frac{1}{m}`` -> ``1/m``, ``W^{[1]\\top}`` -> ``W[1]ᵀ``).

    >>> plain(r"dW^{[1]} = \\boxed{\\tfrac{1}{m}} dZ^{[1]} \\cdot A^{[0]\\top}")
    'dW[1] = (1/m) dZ[1] · A[0]ᵀ'
    """
    text = _PlainTeX(tex_text).sequence()
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r" ([,;])", r"\1", text)
    return "\n".join(line.strip() for line in text.split("\n") if line.strip())


# Inline \( \) and display \[ \] math, each shown as typeset TeX where MathJax runs and as
# plain text where it does not: MathJax (2 or 3) replaces the TeX with its own elements, and
# the CSS below keeps the TeX hidden until then and hides the text once it is there
# (browsers without :has show both).
_MATH = re.compile(r"\\\((?P<inline>.*?)\\\)|\\\[(?P<display>.*?)\\\]", re.S)
_TYPESET = "mjx-container, .MathJax, .MathJax_Preview, .MathJax_CHTML, .MathJax_SVG, .katex"
_STYLE = ("<style>"
          f".cr-math > .cr-tex:not(:has({_TYPESET})) {{position: absolute; width: 1px; "
          "height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap;}"
          f".cr-math > .cr-tex:has({_TYPESET}) + .cr-plain {{display: none;}}"
          "</style>")


def _with_fallbacks(body):
    """``body`` with every TeX formula paired with its :func:`plain` text."""
    def pair(match):
        tex_text = match.group("inline")
        if tex_text is not None:
            shown = html.escape(plain(html.unescape(tex_text)), quote=False)
            return (f'<span class="cr-math"><span class="cr-tex">{match.group(0)}</span>'
                    f'<span class="cr-plain">{shown}</span></span>')
        shown = html.escape(plain(html.unescape(match.group("display"))), quote=False)
        return (f'<div class="cr-math"><div class="cr-tex">{match.group(0)}</div>'
                f'<div class="cr-plain" style="white-space: pre-wrap;">{shown}</div></div>')
    return _MATH.sub(pair, body)
