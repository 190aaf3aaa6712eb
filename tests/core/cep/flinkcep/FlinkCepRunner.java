import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentLinkedQueue;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.state.AggregatingState;
import org.apache.flink.api.common.state.AggregatingStateDescriptor;
import org.apache.flink.api.common.state.KeyedStateStore;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ReducingState;
import org.apache.flink.api.common.state.ReducingStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.common.typeutils.base.StringSerializer;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.cep.CEP;
import org.apache.flink.cep.functions.PatternProcessFunction;
import org.apache.flink.cep.functions.TimedOutPartialMatchHandler;
import org.apache.flink.cep.nfa.NFA;
import org.apache.flink.cep.nfa.NFAState;
import org.apache.flink.cep.nfa.aftermatch.AfterMatchSkipStrategy;
import org.apache.flink.cep.nfa.compiler.NFACompiler;
import org.apache.flink.cep.nfa.sharedbuffer.SharedBuffer;
import org.apache.flink.cep.nfa.sharedbuffer.SharedBufferAccessor;
import org.apache.flink.cep.pattern.MalformedPatternException;
import org.apache.flink.cep.pattern.Pattern;
import org.apache.flink.cep.pattern.WithinType;
import org.apache.flink.cep.pattern.conditions.SimpleCondition;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ArrayNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

/**
 * The reference side of ASCEP's differential test (tests/core/cep/flinkcep/differential.py): the real
 * FlinkCEP of the apache-flink wheel, run on cases written by the Python driver.
 *
 * <p>It reads requests from stdin, one JSON object a line, and answers each with one JSON line on
 * stdout, so one JVM serves a whole run and its shrinking. {"mode": "nfa", "cases": [...]} runs each
 * case through FlinkCEP's NFA driven exactly as CepOperator drives it in event time with one watermark
 * of Long.MAX_VALUE at the end of input: per timestamp advanceTime then process its events, then
 * advanceTime(Long.MAX_VALUE). {"mode": "validate", "cases": [...]} also runs the cases as one real job
 * on a local StreamExecutionEnvironment (CEP.pattern, event time, parallelism 1) and lists the cases where
 * the two ways differ, so the direct drive is known to be what Flink does.
 *
 * <p>A case is {"stages": [{"name", "kind", "link", "low", "high", "optional", "greedy", "inner"}],
 * "within_ms", "within_type", "skip", "skip_stage", "events": ["id:kind@ms", ...]}; every stage's
 * condition is a kind test. A result is {"refused": message or null, "matches": [...], "timeouts": [...]}
 * (with "error" instead if FlinkCEP threw while running it), each match {"events": [[stage, [ids]], ...], "at": step}, where step 2i is the advanceTime before
 * event i, 2i+1 the processing of event i and 2n the final advanceTime.
 */
public final class FlinkCepRunner {

    private static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] args) throws Exception {
        PrintStream answers = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        System.setOut(System.err); // only answers go to stdout, whatever a library prints
        BufferedReader requests = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = requests.readLine()) != null) {
            JsonNode request = JSON.readTree(line);
            List<Case> cases = new ArrayList<>();
            for (JsonNode c : request.get("cases")) {
                cases.add(new Case(c));
            }
            ObjectNode answer = JSON.createObjectNode();
            ArrayNode results = answer.putArray("results");
            for (Case c : cases) {
                ObjectNode result;
                try {
                    result = runNfa(c);
                } catch (Exception e) { // FlinkCEP failing on a case is a finding, not the end of the run
                    result = emptyResult();
                    result.put("error", e.toString());
                }
                results.add(result);
            }
            if ("validate".equals(request.get("mode").asText())) {
                answer.set("disagreements", validate(cases, results));
            }
            answers.println(JSON.writeValueAsString(answer));
        }
    }

    /** One case of the driver: a pattern of kind tests and the events it runs on. */
    static final class Case {
        final JsonNode stages;
        final long withinMs;
        final boolean betweenEvents;
        final String skip;
        final String skipStage;
        final List<String> events = new ArrayList<>();

        Case(JsonNode json) {
            stages = json.get("stages");
            withinMs = json.path("within_ms").isNumber() ? json.get("within_ms").asLong() : 0;
            betweenEvents = "previous_and_current".equals(json.path("within_type").asText());
            skip = json.get("skip").asText();
            skipStage = json.path("skip_stage").isTextual() ? json.get("skip_stage").asText() : null;
            for (JsonNode e : json.get("events")) {
                events.add(e.asText());
            }
        }

        List<String> stageNames() {
            List<String> names = new ArrayList<>();
            for (JsonNode s : stages) {
                names.add(s.get("name").asText());
            }
            return names;
        }

        /** The FlinkCEP pattern, built with the Java API in the order the rule text says it. */
        Pattern<String, String> pattern() {
            Pattern<String, String> p = null;
            for (JsonNode s : stages) {
                String name = s.get("name").asText();
                String link = s.path("link").isTextual() ? s.get("link").asText() : null;
                if (p == null) {
                    p = Pattern.begin(name, skipStrategy());
                } else {
                    switch (link) {
                        case "next": p = p.next(name); break;
                        case "followed_by": p = p.followedBy(name); break;
                        case "followed_by_any": p = p.followedByAny(name); break;
                        case "not_next": p = p.notNext(name); break;
                        case "not_followed_by": p = p.notFollowedBy(name); break;
                        default: throw new IllegalArgumentException("unknown link " + link);
                    }
                }
                p = p.where(new KindIs(s.get("kind").asText()));
                int low = s.get("low").asInt();
                boolean unbounded = s.get("high").isNull();
                int high = unbounded ? low : s.get("high").asInt();
                if (unbounded) {
                    p = low == 1 ? p.oneOrMore() : p.timesOrMore(low);
                } else if (low != 1 || high != 1) {
                    p = low == high ? p.times(low) : p.times(low, high);
                }
                if (s.get("optional").asBoolean()) {
                    p = p.optional();
                }
                if (s.get("greedy").asBoolean()) {
                    p = p.greedy();
                }
                String inner = s.get("inner").asText();
                if (inner.equals("strict")) {
                    p = p.consecutive();
                } else if (inner.equals("any")) {
                    p = p.allowCombinations();
                }
                if (withinMs > 0 && betweenEvents) {
                    p = p.within(Duration.ofMillis(withinMs), WithinType.PREVIOUS_AND_CURRENT);
                }
            }
            if (withinMs > 0 && !betweenEvents) {
                p = p.within(Duration.ofMillis(withinMs), WithinType.FIRST_AND_LAST);
            }
            return p;
        }

        AfterMatchSkipStrategy skipStrategy() {
            switch (skip) {
                case "no_skip": return AfterMatchSkipStrategy.noSkip();
                case "skip_to_next": return AfterMatchSkipStrategy.skipToNext();
                case "skip_past_last_event": return AfterMatchSkipStrategy.skipPastLastEvent();
                case "skip_to_first": return AfterMatchSkipStrategy.skipToFirst(skipStage);
                case "skip_to_last": return AfterMatchSkipStrategy.skipToLast(skipStage);
                default: throw new IllegalArgumentException("unknown skip strategy " + skip);
            }
        }
    }

    /** A stage's condition: the event is of this kind. Events are "id:kind@ms". */
    static final class KindIs extends SimpleCondition<String> {
        private final String kind;

        KindIs(String kind) {
            this.kind = kind;
        }

        @Override
        public boolean filter(String event) {
            return kind(event).equals(kind);
        }
    }

    static String kind(String event) {
        return event.substring(event.indexOf(':') + 1, event.indexOf('@'));
    }

    static long timestamp(String event) {
        return Long.parseLong(event.substring(event.indexOf('@') + 1));
    }

    static int id(String event) {
        return Integer.parseInt(event.substring(0, event.indexOf(':')));
    }

    /**
     * The pattern's NFA factory, or null with the message FlinkCEP refused it with: the Pattern API and
     * NFACompiler refuse with MalformedPatternException, and with UnsupportedOperationException for "an
     * optional path to NOT condition".
     */
    private static NFACompiler.NFAFactory<String> compile(Case c, ObjectNode result) {
        try {
            return NFACompiler.compileFactory(c.pattern(), true);
        } catch (MalformedPatternException | UnsupportedOperationException e) {
            result.put("refused", e.getMessage());
            return null;
        }
    }

    private static ObjectNode emptyResult() {
        ObjectNode result = JSON.createObjectNode();
        result.putNull("refused");
        result.putArray("matches");
        result.putArray("timeouts");
        return result;
    }

    /** FlinkCEP's NFA over a SharedBuffer in memory, driven as CepOperator.onEventTime drives it. */
    static ObjectNode runNfa(Case c) throws Exception {
        ObjectNode result = emptyResult();
        NFACompiler.NFAFactory<String> factory = compile(c, result);
        if (factory == null) {
            return result;
        }
        NFA<String> nfa = factory.createNFA();
        AfterMatchSkipStrategy skip = c.pattern().getAfterMatchSkipStrategy();
        SharedBuffer<String> buffer = new SharedBuffer<>(new MemoryStore(), StringSerializer.INSTANCE);
        try {
            NFAState state = nfa.createInitialNFAState();
            List<String> names = c.stageNames();
            ArrayNode matches = (ArrayNode) result.get("matches");
            ArrayNode timeouts = (ArrayNode) result.get("timeouts");
            int n = c.events.size();
            for (int i = 0; i < n; i++) {
                long ts = timestamp(c.events.get(i));
                if (i == 0 || ts != timestamp(c.events.get(i - 1))) {
                    advance(nfa, buffer, state, ts, skip, names, 2 * i, matches, timeouts);
                }
                try (SharedBufferAccessor<String> accessor = buffer.getAccessor()) {
                    for (Map<String, List<String>> m : nfa.process(accessor, state, c.events.get(i), ts, skip, () -> 0L)) {
                        matches.add(outcome(m, names, 2 * i + 1));
                    }
                }
            }
            advance(nfa, buffer, state, Long.MAX_VALUE, skip, names, 2 * n, matches, timeouts);
        } finally {
            buffer.releaseCacheStatisticsTimer();
        }
        return result;
    }

    private static void advance(NFA<String> nfa, SharedBuffer<String> buffer, NFAState state, long ts,
                                AfterMatchSkipStrategy skip, List<String> names, int step,
                                ArrayNode matches, ArrayNode timeouts) throws Exception {
        try (SharedBufferAccessor<String> accessor = buffer.getAccessor()) {
            Tuple2<Collection<Map<String, List<String>>>, Collection<Tuple2<Map<String, List<String>>, Long>>> out =
                    nfa.advanceTime(accessor, state, ts, skip);
            for (Map<String, List<String>> m : out.f0) {
                matches.add(outcome(m, names, step));
            }
            for (Tuple2<Map<String, List<String>>, Long> t : out.f1) {
                timeouts.add(outcome(t.f0, names, step));
            }
        }
    }

    /** A match or timed-out partial match: its events' ids per stage, in the pattern's stage order. */
    static ObjectNode outcome(Map<String, List<String>> match, List<String> names, int step) {
        ObjectNode node = JSON.createObjectNode();
        ArrayNode events = node.putArray("events");
        for (String name : names) {
            List<String> taken = match.get(name);
            if (taken == null || taken.isEmpty()) {
                continue;
            }
            ArrayNode pair = events.addArray();
            pair.add(name);
            ArrayNode ids = pair.addArray();
            for (String e : taken) {
                ids.add(id(e));
            }
        }
        node.put("at", step);
        return node;
    }

    // ------------------------------------------------------------------ the same cases as one real job

    /** What the validation job's pattern functions found: the job runs in this JVM, so they hand it over here. */
    static final ConcurrentLinkedQueue<String> FOUND = new ConcurrentLinkedQueue<>();

    /** Where the real job's matches and timeouts (as sets, without their steps) differ from the direct drive's. */
    static ArrayNode validate(List<Case> cases, ArrayNode direct) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(1);
        Map<Integer, ObjectNode> job = new HashMap<>();
        for (int i = 0; i < cases.size(); i++) {
            Case c = cases.get(i);
            if (!direct.get(i).get("refused").isNull() || direct.get(i).has("error") || c.events.isEmpty()) {
                continue; // refused, failed, or nothing to feed: the job has nothing to say
            }
            job.put(i, emptyResult());
            DataStream<String> input = env.fromData(c.events, Types.STRING)
                    .assignTimestampsAndWatermarks(WatermarkStrategy.<String>noWatermarks()
                            .withTimestampAssigner((event, previous) -> timestamp(event)));
            CEP.pattern(input, c.pattern()).process(new Collect(i, c.stageNames()))
                    .sinkTo(new DiscardingSink<>());
        }
        if (!job.isEmpty()) {
            FOUND.clear();
            env.execute("flinkcep-differential-validation"); // bounded input: ends with a Long.MAX_VALUE watermark
            for (String found : FOUND) {
                JsonNode record = JSON.readTree(found);
                ((ArrayNode) job.get(record.get("case").asInt()).get(record.get("what").asText()))
                        .add(record.get("outcome"));
            }
        }
        ArrayNode disagreements = JSON.createArrayNode();
        for (Map.Entry<Integer, ObjectNode> entry : new TreeMap<>(job).entrySet()) {
            JsonNode mine = direct.get(entry.getKey());
            ObjectNode theirs = entry.getValue();
            if (!asSet(mine.get("matches")).equals(asSet(theirs.get("matches")))
                    || !asSet(mine.get("timeouts")).equals(asSet(theirs.get("timeouts")))) {
                ObjectNode d = disagreements.addObject();
                d.put("case", entry.getKey());
                d.set("nfa", mine);
                d.set("job", theirs);
            }
        }
        return disagreements;
    }

    private static TreeSet<String> asSet(JsonNode outcomes) {
        TreeSet<String> set = new TreeSet<>();
        for (JsonNode o : outcomes) {
            set.add(o.get("events").toString());
        }
        return set;
    }

    /** The job's pattern function: each match and timed-out partial match, tagged with its case, into FOUND. */
    static final class Collect extends PatternProcessFunction<String, String>
            implements TimedOutPartialMatchHandler<String> {
        private final int caseIndex;
        private final List<String> names;

        Collect(int caseIndex, List<String> names) {
            this.caseIndex = caseIndex;
            this.names = names;
        }

        private void found(String what, Map<String, List<String>> match) {
            ObjectNode node = JSON.createObjectNode();
            node.put("case", caseIndex);
            node.put("what", what);
            node.set("outcome", outcome(match, names, -1));
            FOUND.add(node.toString());
        }

        @Override
        public void processMatch(Map<String, List<String>> match, Context ctx, Collector<String> out) {
            found("matches", match);
        }

        @Override
        public void processTimedOutMatch(Map<String, List<String>> match, Context ctx) {
            found("timeouts", match);
        }
    }

    // ------------------------------------------------------------------ keyed state in memory, for one key

    /** The state SharedBuffer keeps (three MapStates), on the heap as Flink's heap backend keeps it. */
    static final class MemoryStore implements KeyedStateStore {
        @Override
        public <UK, UV> MapState<UK, UV> getMapState(MapStateDescriptor<UK, UV> descriptor) {
            return new MemoryMapState<>();
        }

        @Override
        public <T> ValueState<T> getState(ValueStateDescriptor<T> descriptor) {
            throw unused();
        }

        @Override
        public <T> ListState<T> getListState(ListStateDescriptor<T> descriptor) {
            throw unused();
        }

        @Override
        public <T> ReducingState<T> getReducingState(ReducingStateDescriptor<T> descriptor) {
            throw unused();
        }

        @Override
        public <IN, ACC, OUT> AggregatingState<IN, OUT> getAggregatingState(
                AggregatingStateDescriptor<IN, ACC, OUT> descriptor) {
            throw unused();
        }

        @Override
        public <T> org.apache.flink.api.common.state.v2.ValueState<T> getValueState(
                org.apache.flink.api.common.state.v2.ValueStateDescriptor<T> descriptor) {
            throw unused();
        }

        @Override
        public <T> org.apache.flink.api.common.state.v2.ListState<T> getListState(
                org.apache.flink.api.common.state.v2.ListStateDescriptor<T> descriptor) {
            throw unused();
        }

        @Override
        public <UK, UV> org.apache.flink.api.common.state.v2.MapState<UK, UV> getMapState(
                org.apache.flink.api.common.state.v2.MapStateDescriptor<UK, UV> descriptor) {
            throw unused();
        }

        @Override
        public <T> org.apache.flink.api.common.state.v2.ReducingState<T> getReducingState(
                org.apache.flink.api.common.state.v2.ReducingStateDescriptor<T> descriptor) {
            throw unused();
        }

        @Override
        public <IN, ACC, OUT> org.apache.flink.api.common.state.v2.AggregatingState<IN, OUT> getAggregatingState(
                org.apache.flink.api.common.state.v2.AggregatingStateDescriptor<IN, ACC, OUT> descriptor) {
            throw unused();
        }

        @Override
        public String getBackendTypeIdentifier() {
            return "memory";
        }

        private static UnsupportedOperationException unused() {
            return new UnsupportedOperationException("SharedBuffer asked for a state this store does not keep");
        }
    }

    static final class MemoryMapState<K, V> implements MapState<K, V> {
        private final Map<K, V> map = new HashMap<>();

        @Override public V get(K key) { return map.get(key); }
        @Override public void put(K key, V value) { map.put(key, value); }
        @Override public void putAll(Map<K, V> values) { map.putAll(values); }
        @Override public void remove(K key) { map.remove(key); }
        @Override public boolean contains(K key) { return map.containsKey(key); }
        @Override public Iterable<Map.Entry<K, V>> entries() { return map.entrySet(); }
        @Override public Iterable<K> keys() { return map.keySet(); }
        @Override public Iterable<V> values() { return map.values(); }
        @Override public Iterator<Map.Entry<K, V>> iterator() { return map.entrySet().iterator(); }
        @Override public boolean isEmpty() { return map.isEmpty(); }
        @Override public void clear() { map.clear(); }
    }
}
