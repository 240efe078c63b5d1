"""Renders template text in Jinja2's immutable sandbox, within budgets, in worker threads.

A missing variable is an error, named. Every render has an operation budget (each item a
loop takes, each call, each filter, each growing operator counts one) and a time budget of
the render thread's CPU time, checked as operations are spent, so a runaway template stops
itself while a render that only waited for the CPU (a busy machine, the event loop holding the
GIL) is not cut short; and no value or field may grow past `MAX_OUTPUT`.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import re
import string
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial, wraps
from typing import TYPE_CHECKING, Any, TypeVar

from jinja2 import (
    StrictUndefined,
    TemplateRuntimeError,
    TemplateSyntaxError,
    Undefined,
    UndefinedError,
    nodes,
)
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg, missing

from domain.templates.aggregate import is_template_key
from ports.templates import Content, RenderedContent, RenderError, TemplateNotFound

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    import jinja2
    from jinja2.compiler import Frame

    from domain.policy.vocabulary import Channel
    from domain.shared.errors import DomainError
    from domain.templates.aggregate import Template, Variant
    from ports.templates import PublishedTemplates, RenderAsk

__all__ = ["MAX_OUTPUT", "JinjaRenderer", "JinjaTemplates", "RenderBudget"]

_LINE_BREAKS = re.compile(r"[\r\n]+")
_T = TypeVar("_T")

MAX_OUTPUT = 256 * 1024
"""Characters one rendered field, or characters and items one value, may have; more is refused
unbuilt."""
_MAX_BITS = 65_536
# The CPU clock is read every this many operations (a read costs about 15 operations' worth):
# a runaway render overshoots its time by at most this many operations.
_CLOCK_STRIDE = 16


@dataclass(frozen=True, slots=True)
class RenderBudget:
    """What one render (every field of one content) may spend: operations, and seconds of its
    thread's CPU time."""

    operations: int = 100_000
    seconds: float = 0.25


class _OverBudget(Exception):
    """A render spent a budget; not a SecurityError, so nothing in Jinja2 swallows it."""

    def __init__(self, budget: str, limit: float, reason: str) -> None:
        super().__init__(reason)
        self.budget = budget
        self.limit = limit


class _Spending:
    """The budget left to the render running in this thread. Its time is the thread's CPU
    time: what the render itself burnt, not time spent waiting for the GIL or a core."""

    __slots__ = ("budget", "deadline", "left")

    def __init__(self, budget: RenderBudget) -> None:
        self.budget = budget
        self.left = budget.operations
        self.deadline = time.thread_time() + budget.seconds

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            operations = self.budget.operations
            raise _OverBudget("operations", operations, f"more than {operations} operations")
        if self.left % _CLOCK_STRIDE == 0 and time.thread_time() > self.deadline:
            seconds = self.budget.seconds
            raise _OverBudget("seconds", seconds, f"more than {seconds} seconds of CPU time")


_spending: contextvars.ContextVar[_Spending | None] = contextvars.ContextVar(
    "render_spending", default=None
)


def _spend() -> _Spending:
    spending = _spending.get()
    if spending is None:
        # Only Jinja2's constant folding at compile time calls here without a render: it
        # catches this and leaves the expression to the render, where it is budgeted.
        raise RuntimeError("a budgeted operation outside a render")
    spending.spend()
    return spending


def _refuse_size(size: int) -> None:
    if size > MAX_OUTPUT:
        raise _OverBudget("size", MAX_OUTPUT, f"a value longer than {MAX_OUTPUT}")


def _weight(value: Any) -> int:
    """About how long `str(value)` is: characters and items, nested ones too, counted only up
    to just past `MAX_OUTPUT`. A list of many references to one long string is long."""
    total = 0
    stack = [value]
    while stack and total <= MAX_OUTPUT:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, Namespace):  # `{% set ns.x = ... %}` reaches it unhooked
            stack.append(object.__getattribute__(item, "_Namespace__attrs"))
        elif isinstance(item, Mapping):
            total += len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item)
            stack.extend(item)
        else:
            total += 1
    return total


def _sized(value: Any) -> Any:
    """The value, if it and what it holds are not longer than `MAX_OUTPUT`."""
    if not isinstance(value, int | float | bool) and value is not None:
        _refuse_size(_weight(value))
    return value


def _refuse_width(*numbers: Any) -> None:
    """A width, count or precision: a number above `MAX_OUTPUT` would build a huge value."""
    for number in numbers:
        if isinstance(number, int) and number > MAX_OUTPUT:
            _refuse_size(number)


_PRINTF_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_DIGITS = re.compile(r"\d+")


def _check_printf(text: str, values: Any) -> None:
    """`text % values`: widths and precisions, written or taken from `*`, are refused when
    they would build more than `MAX_OUTPUT`."""
    starred = False
    for field in _PRINTF_FIELD.finditer(text):
        for part in field.groups():
            if part == "*":
                starred = True
            elif part:
                _refuse_width(int(part))
    if starred:
        _refuse_width(*(values if isinstance(values, tuple) else (values,)))


def _check_format(text: str, values: Iterable[Any]) -> None:
    """`text.format(...)`: the same, for format specs and nested `{width}` fields."""
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return  # formatting raises the same error, named, when it runs
    nested = False
    for _, _, spec, _ in fields:
        if spec:
            _refuse_width(*(int(d) for d in _DIGITS.findall(spec)))
            nested = nested or "{" in spec
    if nested:
        _refuse_width(*values)


def _check_replace(text: Any, old: Any, new: Any, count: Any = None) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        found = text.count(old) if old else len(text) + 1
        if isinstance(count, int) and count >= 0:
            found = min(found, count)
        _refuse_size(len(text) + found * max(0, len(new) - len(old)))


def _check_join(items: Any, separator: Any) -> None:
    """`items` is sized (see `_listed`): the joined text's length is known before it is built."""
    if isinstance(items, str | list | tuple | dict):
        _refuse_size(len(items) * len(str(separator)) + _weight(items))


def _listed(value: Any) -> Any:
    """An iterator as a list, so that a check can see what it yields; joining it would."""
    if isinstance(value, str | list | tuple | dict | Undefined) or not hasattr(value, "__iter__"):
        return value
    _refuse_size(len(items := list(itertools.islice(value, MAX_OUTPUT + 1))))
    return items


def _check_indent(text: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    prefix = width if isinstance(width, int) else len(str(width))
    _refuse_width(prefix)
    lines = str(text).count("\n") + 1
    _refuse_size(len(str(text)) + prefix * lines)


def _check_wordwrap(text: Any, width: Any = 79, *args: Any, **kwargs: Any) -> None:
    wrap = kwargs.get("wrapstring", args[1] if len(args) > 1 else None) or "\n"
    lines = len(str(text)) // max(1, width if isinstance(width, int) else 1) + 1
    _refuse_size(len(str(text)) + lines * len(str(wrap)))


def _check_sum(items: Any, attribute: Any = None, start: Any = 0) -> None:
    # Summing lists copies the total so far at each step: quadratic inside one call.
    if not isinstance(start, int | float):
        raise SecurityError("sum() takes numbers only")


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "batch": lambda value, linecount, *_, **__: _refuse_width(linecount),
    "center": lambda value, width=80: _refuse_width(width),
    "format": lambda value, *args, **kwargs: _check_printf(str(value), kwargs or args),
    "indent": _check_indent,
    "join": lambda value, d="", *_, **__: _check_join(value, d),
    "replace": _check_replace,
    "slice": lambda value, slices, *_, **__: _refuse_width(slices),
    "sum": _check_sum,
    "wordwrap": _check_wordwrap,
}

_STR_METHOD_CHECKS: dict[str, Callable[..., None]] = {
    "center": lambda text, width, *_: _refuse_width(width),
    "ljust": lambda text, width, *_: _refuse_width(width),
    "rjust": lambda text, width, *_: _refuse_width(width),
    "zfill": lambda text, width: _refuse_width(width),
    "expandtabs": lambda text, tabsize=8: _refuse_size(
        len(text) + text.count("\t") * (tabsize if isinstance(tabsize, int) else 0)
    ),
    "replace": _check_replace,
    "join": lambda text, items: _check_join(items, text),
}


def _budgeted_function(name: str, function: Any) -> Any:
    passes = 0 if _PassArg.from_obj(function) is None else 1  # the context or environment
    check = _FILTER_CHECKS.get(name)

    @wraps(function)  # keeps the `jinja_pass_arg` mark
    def budgeted(*args: Any, **kwargs: Any) -> Any:
        _spend()
        if check is not None:
            if name == "join":
                args = (*args[:passes], _listed(args[passes]), *args[passes + 1 :])
            check(*args[passes:], **kwargs)
        return _sized(function(*args, **kwargs))

    return budgeted


def _budgeted_range(*args: int) -> range:
    made = range(*args)
    spending = _spend()
    if len(made) > spending.left:  # `range(n) | join` takes its items without a loop
        limit = spending.budget.operations
        raise _OverBudget("operations", limit, f"more than {limit} operations")
    return made


class _MissingVariable(UndefinedError):
    """Raised by `_Missing`; keeps what was looked up and where, to name the variable."""

    def __init__(self, undefined: _Missing, message: str | None) -> None:
        super().__init__(message)
        self.owner = undefined._undefined_obj
        self.name = undefined._undefined_name


class _Missing(StrictUndefined):
    """StrictUndefined whose error remembers the lookup that failed."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[TemplateRuntimeError] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, exc)
        if exc is UndefinedError:  # the sandbox passes SecurityError for unsafe attributes
            self._undefined_exception = partial(_MissingVariable, self)  # type: ignore[assignment]


class _BudgetedCode(CodeGenerator):
    """Jinja2's code, with every `for` taking its items through `environment.iterate_budgeted`,
    every `~` joining through `environment.join_budgeted` and every literal list, tuple and
    dict weighed: the sandbox has no hook for these."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._iterables: set[int] = set()

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        # The iterable itself, not what a loop's `if` lets through, so filtered items count.
        self._iterables.add(id(node.iter))
        super().visit_For(node, frame)

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if id(node) not in self._iterables:
            return super().visit(node, *args, **kwargs)
        self.write("environment.iterate_budgeted(")
        super().visit(node, *args, **kwargs)
        self.write(")")
        return None

    def _weighed(self, visit: Callable[[Any, Frame], None], node: Any, frame: Frame) -> None:
        self.write("environment.weighed(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._weighed(super().visit_List, node, frame)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._weighed(super().visit_Dict, node, frame)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # `{% for a, b in ... %}`, `{% set a, b = ... %}`
            super().visit_Tuple(node, frame)
        else:
            self._weighed(super().visit_Tuple, node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.join_budgeted({join}, (")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, where each loop item, call, filter, test, lookup and growing
    operator spends the render's budget, and nothing grows past `MAX_OUTPUT`."""

    code_generator_class = _BudgetedCode
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    @staticmethod
    def concat(parts: Iterable[str]) -> str:
        """What a macro, a `{% set %}` block or a `{% filter %}` block made: not longer than
        `MAX_OUTPUT` either, or doubling them line by line would grow without end."""
        made = list(parts)
        _refuse_size(sum(len(part) for part in made))
        return "".join(made)

    @staticmethod
    def weighed(value: Any) -> Any:
        _spend()
        return _sized(value)

    def iterate_budgeted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            _spend()
            yield item

    def join_budgeted(self, join: Callable[[Iterable[Any]], str], parts: tuple[Any, ...]) -> str:
        _spend()
        _refuse_size(sum(_weight(part) for part in parts))
        return _sized(join(parts))  # type: ignore[no-any-return]

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _spend()
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponents above 64 are not allowed")
        if operator in ("*", "**") and isinstance(left, int) and isinstance(right, int):
            # Squaring in a loop would make numbers no single step of which ends in time.
            bits = left.bit_length() * (abs(right) if operator == "**" else 1)
            if bits + (right.bit_length() if operator == "*" else 0) > _MAX_BITS:
                raise SecurityError(f"numbers above 2 ** {_MAX_BITS} are not allowed")
        if operator == "*":
            sized, count = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(sized, str | list | tuple) and isinstance(count, int):
                _refuse_size(_weight(sized) * count)
        if operator == "+" and isinstance(left, str | list | tuple):
            _refuse_size(_weight(left) + _weight(right))
        if operator == "%" and isinstance(left, str):
            _check_printf(left, right)
        return _sized(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend()
        if isinstance(__obj, LoopContext) and args:  # `loop(children)` in a recursive loop
            args = (__self.iterate_budgeted(args[0]), *args[1:])
        owner = getattr(__obj, "__self__", None)
        check = _STR_METHOD_CHECKS.get(getattr(__obj, "__name__", ""))
        if isinstance(owner, str) and check is not None:
            if __obj.__name__ == "join" and args:
                args = (_listed(args[0]), *args[1:])
            check(owner, *args, **kwargs)
        return _sized(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        _spend()  # filters such as `groupby` and `sort(attribute=...)` look up every item
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _spend()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        formatting = super().wrap_str_format(value)
        if formatting is None:
            return None
        text: str = value.__self__
        by_name = value.__name__ == "format_map"

        @wraps(formatting)
        def checked(*args: Any, **kwargs: Any) -> str:
            _spend()
            given = args[0] if by_name and args else kwargs
            values = [*given.values()] if isinstance(given, Mapping) else []
            _check_format(text, [*values, *([] if by_name else args)])
            return _sized(formatting(*args, **kwargs))  # type: ignore[no-any-return]

        return checked


def _environment(*, html: bool) -> ImmutableSandboxedEnvironment:
    environment = _Sandbox(
        undefined=_Missing,
        autoescape=html,
        keep_trailing_newline=True,
        cache_size=0,
        finalize=_sized,  # `{{ value }}` is weighed before it is made text
    )
    environment.filters = {
        name: _budgeted_function(name, function) for name, function in environment.filters.items()
    }
    environment.tests = {  # `select` and `reject` run a test on every item
        name: _budgeted_function(name, function) for name, function in environment.tests.items()
    }
    environment.globals["range"] = _budgeted_range
    del environment.globals["lipsum"]  # `lipsum(n)` builds n paragraphs in one call
    return environment


def _without_nulls(value: Any) -> Any:
    """A copy in which null values of mappings are missing: `Hello None` is never sent."""
    if isinstance(value, Mapping):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_nulls(v) for v in value]
    return value


def _path_to(target: Any, scope: Mapping[str, Any]) -> str | None:
    """Where in the context `target` sits, as `customer.address` or `vars.items[2]`."""
    stack: list[tuple[Any, str]] = [(value, name) for name, value in scope.items()]
    while stack:
        value, path = stack.pop()
        if value is target:
            return path
        if isinstance(value, Mapping):
            stack.extend((v, f"{path}.{k}") for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{n}]") for n, v in enumerate(value))
    return None


def _variable(error: _MissingVariable, scope: Mapping[str, Any]) -> str:
    name = str(error.name)
    if error.owner is missing:
        return name
    owner = _path_to(error.owner, scope)
    if owner is None:
        return name
    return f"{owner}[{name}]" if isinstance(error.name, int) else f"{owner}.{name}"


_FIELDS = ("subject", "body", "html", "title", "whatsapp_template", "whatsapp_language")


class JinjaRenderer:
    """Compiles each text once (the most recent `cache_size` kept) and renders it sandboxed,
    within `budget`; `render_in_worker` renders on threads of its own (`threads`, one by
    default: the GIL lets one render run at a time anyway), off the event loop and apart from
    `asyncio.to_thread`'s. Previews, which any reader may send, have threads of their own: a
    flood of costly previews shares the CPU with sends but never queues them.

    Variables render escaped in the `html` field only; other fields are plain text.
    """

    def __init__(
        self, cache_size: int = 4096, budget: RenderBudget | None = None, threads: int = 1
    ) -> None:
        self.cache_size = cache_size
        self.budget = budget or RenderBudget()
        self._environments = {False: _environment(html=False), True: _environment(html=True)}
        self._compiled: OrderedDict[tuple[bool, str], jinja2.Template] = OrderedDict()
        self._compiled_lock = threading.Lock()
        self._workers = ThreadPoolExecutor(threads, thread_name_prefix="chorus-render")
        self._preview_workers = ThreadPoolExecutor(threads, thread_name_prefix="chorus-preview")

    async def check(self, text: str) -> None:
        """Raises RenderError naming the line of the first syntax error; compiles on the
        render thread, as a long text takes a while."""
        await self._in_worker(partial(self._compile, text, html=False, field=None))

    def read_by(self, text: str) -> frozenset[str]:
        """The variables a text looks up (TemplateVariables): `customer.first_name`, or a
        whole root (`vars`) when it is read as a whole."""
        try:
            tree = self._environments[False].parse(text)
        except TemplateSyntaxError:
            return frozenset()
        return frozenset(_paths_read(tree))

    async def render_in_worker(
        self, content: Content, context: Mapping[str, Any], *, preview: bool = False
    ) -> Content:
        """`render` on a render thread (a preview thread for a `preview`); the event loop goes
        on meanwhile. A render waiting for its thread has not started, so its budget has not
        either."""
        return await self._in_worker(partial(self.render, content, context), preview=preview)

    async def render_all_in_worker(
        self, asked: Sequence[tuple[Content, Mapping[str, Any]]]
    ) -> list[Content | RenderError]:
        """`render` of each (content, context), one after another in one trip to a render
        thread (a broadcast's batch: one wake-up, not one per send); each render has its own
        budget, and one that fails is answered with its error while the others go on."""
        return await self._in_worker(partial(self._render_all, asked))

    def _render_all(
        self, asked: Sequence[tuple[Content, Mapping[str, Any]]]
    ) -> list[Content | RenderError]:
        rendered: list[Content | RenderError] = []
        for content, context in asked:
            try:
                rendered.append(self.render(content, context))
            except RenderError as error:
                rendered.append(error)
        return rendered

    async def _in_worker(self, work: Callable[[], _T], *, preview: bool = False) -> _T:
        workers = self._preview_workers if preview else self._workers
        return await asyncio.get_running_loop().run_in_executor(workers, work)

    def close(self) -> None:
        """Lets the worker threads end once their renders have."""
        self._workers.shutdown(wait=False, cancel_futures=True)
        self._preview_workers.shutdown(wait=False, cancel_futures=True)

    def render(self, content: Content, context: Mapping[str, Any]) -> Content:
        """The content with every text field rendered, in this thread; raises RenderError
        naming the field, and the budget when one is spent."""
        scope = _without_nulls(context)
        for name, value in scope.items():
            # Every value a render makes is bounded; so are those it is given, or one filter
            # on a huge one (`vars.text | sort`) would run past any deadline.
            if _weight(value) > MAX_OUTPUT:
                raise RenderError(
                    f"context: {name} is longer than {MAX_OUTPUT}", budget="size", limit=MAX_OUTPUT
                )
        parameters = {
            f"whatsapp_parameters[{n}]": p for n, p in enumerate(content.whatsapp_parameters)
        }
        texts = {f: getattr(content, f) for f in _FIELDS} | parameters
        # A field with no `{` (no tag, variable or comment) and no `\r` (Jinja2 rewrites line
        # breaks) renders as itself: a broadcast's subject is often such a line.
        rendered: dict[str, str] = {
            field: text
            for field, text in texts.items()
            if text is not None and "{" not in text and "\r" not in text and len(text) <= MAX_OUTPUT
        }
        compiled = {
            field: self._compile(text, html=field == "html", field=field)
            for field, text in texts.items()
            if text is not None and field not in rendered
        }
        # Compiling is bounded by the text's size and done once; the budget is the render's.
        spending = _spending.set(_Spending(self.budget))
        try:
            rendered |= {field: self._render(t, scope, field) for field, t in compiled.items()}
        finally:
            _spending.reset(spending)
        subject = rendered.get("subject")
        return Content(
            subject=_LINE_BREAKS.sub(" ", subject) if subject is not None else None,
            body=rendered.get("body"),
            html=rendered.get("html"),
            title=rendered.get("title"),
            whatsapp_template=rendered.get("whatsapp_template"),
            whatsapp_language=rendered.get("whatsapp_language"),
            whatsapp_parameters=tuple(rendered.get(field) or "" for field in parameters),
        )

    def _compile(self, source: str, *, html: bool, field: str | None) -> jinja2.Template:
        key = (html, source)
        with self._compiled_lock:
            compiled = self._compiled.get(key)
            if compiled is not None:
                self._compiled.move_to_end(key)
                return compiled
        try:
            compiled = self._environments[html].from_string(source)
        except TemplateSyntaxError as error:
            where = f"{field}: " if field else ""
            raise RenderError(
                f"{where}syntax error on line {error.lineno}: {error.message}"
            ) from None
        with self._compiled_lock:
            self._compiled[key] = compiled
            if len(self._compiled) > self.cache_size:
                self._compiled.popitem(last=False)
        return compiled

    @staticmethod
    def _render(template: jinja2.Template, scope: Mapping[str, Any], field: str) -> str:
        try:
            chunks: list[str] = []
            size = 0
            for chunk in template.generate(scope):
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise _OverBudget("size", MAX_OUTPUT, f"longer than {MAX_OUTPUT} characters")
                chunks.append(chunk)
            return "".join(chunks)
        except _OverBudget as spent:
            raise RenderError(
                f"{field}: over the render budget: {spent}", budget=spent.budget, limit=spent.limit
            ) from None
        except _MissingVariable as error:
            variable = _variable(error, scope)
            raise RenderError(f"{field}: missing variable {variable}", variable=variable) from None
        except SecurityError as error:
            raise RenderError(f"{field}: not allowed in a template: {error}") from None
        except RecursionError:
            raise RenderError(f"{field}: calls nested too deeply") from None
        except Exception as error:  # a template's own mistake: a bad filter, 1 / 0, ...
            raise RenderError(f"{field}: {type(error).__name__}: {error}") from None


_ROOTS = frozenset({"customer", "vars"})


def _paths_read(tree: nodes.Node) -> Iterator[str]:
    """`customer.first_name` for `customer.first_name` and `customer["first_name"]`; `customer`
    for `customer` read whole."""
    looked_up: set[int] = set()
    lookups: list[nodes.Getattr | nodes.Getitem] = [
        *tree.find_all(nodes.Getattr),
        *tree.find_all(nodes.Getitem),
    ]
    for lookup in lookups:
        root = lookup.node
        if not isinstance(root, nodes.Name) or root.name not in _ROOTS:
            continue
        looked_up.add(id(root))
        if isinstance(lookup, nodes.Getattr):
            yield f"{root.name}.{lookup.attr}"
        elif isinstance(lookup.arg, nodes.Const) and isinstance(lookup.arg.value, str):
            yield f"{root.name}.{lookup.arg.value}"
        else:
            yield root.name
    for name in tree.find_all(nodes.Name):
        if name.name in _ROOTS and name.ctx == "load" and id(name) not in looked_up:
            yield name.name


def _content_of(variant: Variant) -> Content:
    return Content(
        subject=variant.subject,
        body=variant.body,
        html=variant.html,
        title=variant.title,
        whatsapp_template=variant.whatsapp_template,
        whatsapp_language=variant.whatsapp_language,
        whatsapp_parameters=variant.whatsapp_parameters,
    )


class JinjaTemplates:
    """Stored templates: the version asked for, the best locale's variant, rendered."""

    def __init__(self, repository: PublishedTemplates, renderer: JinjaRenderer | None = None):
        self.repository = repository
        self.renderer = renderer or JinjaRenderer()

    async def render(
        self,
        key: str,
        channel: Channel,
        locale: str | None,
        context: Mapping[str, Any],
        version: int | None = None,
        *,
        preview: bool = False,
    ) -> RenderedContent:
        template = await self.repository.get(key) if is_template_key(key) else None
        variant, number = await self._variant(template, key, channel, locale, version)
        content = await self.renderer.render_in_worker(
            _content_of(variant), context, preview=preview
        )
        return RenderedContent(content, key, number, variant.locale)

    async def render_inline(self, content: Content, context: Mapping[str, Any]) -> RenderedContent:
        return RenderedContent(await self.renderer.render_in_worker(content, context))

    async def render_all(self, asked: Sequence[RenderAsk]) -> list[RenderedContent | DomainError]:
        """The variants looked up once per template, then every render in one trip."""
        answers: list[RenderedContent | DomainError | None] = []
        work: list[tuple[Content, Mapping[str, Any]]] = []
        made: list[tuple[str | None, int | None, str | None]] = []
        templates: dict[str, Template | None] = {}
        for ask in asked:
            origin: tuple[str | None, int | None, str | None] = (None, None, None)
            try:
                if ask.inline is not None:
                    content = ask.inline
                else:
                    key = ask.key or ""
                    if key not in templates:
                        templates[key] = (
                            await self.repository.get(key) if is_template_key(key) else None
                        )
                    variant, number = await self._variant(
                        templates[key], key, ask.channel, ask.locale, ask.version
                    )
                    content, origin = _content_of(variant), (key, number, variant.locale)
            except TemplateNotFound as error:
                answers.append(error)
                continue
            answers.append(None)
            work.append((content, ask.context))
            made.append(origin)
        rendered = iter(await self.renderer.render_all_in_worker(work) if work else [])
        origins = iter(made)
        return [
            answer if answer is not None else _rendered(next(rendered), next(origins))
            for answer in answers
        ]

    async def _variant(
        self,
        template: Template | None,
        key: str,
        channel: Channel,
        locale: str | None,
        version: int | None,
    ) -> tuple[Variant, int]:
        if template is None:
            raise TemplateNotFound(f"there is no template {key!r}")
        chosen = template.latest if version is None else template.find_version(version)
        if chosen is None and version is not None:
            # The cached copy may predate a version another process just published.
            fresh = await self.repository.load(key)
            chosen = fresh.find_version(version) if fresh is not None else None
        if chosen is None:
            raise TemplateNotFound(f"template {key!r} has no version {version}")
        variant = chosen.variant_for(channel, locale)
        if variant is None:
            raise TemplateNotFound(
                f"template {key!r} version {chosen.number} has no {channel} variant"
            )
        return variant, chosen.number


def _rendered(
    content: Content | RenderError, origin: tuple[str | None, int | None, str | None]
) -> RenderedContent | DomainError:
    if isinstance(content, RenderError):
        return content
    return RenderedContent(content, *origin)
