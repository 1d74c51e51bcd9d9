-- wrk script for the appliance benchmark: every request carries a distinct visitor text.
--
-- Environment (read once per wrk thread):
--   BENCH_MODE  text    POST /api/v1/chat, a new conversation with a plain question
--               kb      the same, with a question about the knowledge base (BENCH_QUERIES)
--               cache   a small fixed set of first-turn questions, repeated (cache hits)
--               image   a new conversation for a pooled visitor, with that visitor's image
--               openai  POST /v1/chat/completions (the peer gateway), plain question
--   BENCH_SALT  a word that makes this run's texts differ from any earlier run's
--   BENCH_POOL  image mode: a file of "visitor_token attachment_id" lines
--   BENCH_QUERIES kb mode: a file of questions, one a line (a ticket number is appended)
--   BENCH_MODEL openai mode: the model name
-- done() prints one line "BENCH_JSON {...}" with requests, duration, errors and percentiles.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
   for _, t in ipairs(threads) do t:set("nthreads", #threads) end
end

local plain = {
   "How do I reset the password for account %s?",
   "Can I return order #%s if I already opened the box?",
   "What are the delivery times to postcode %s this week?",
   "Why was I charged twice on invoice %s?",
   "Is the charger model X-%s compatible with my older phone?",
   "Could you change the shipping address on order %s please",
   "My subscription %s renewed but I cancelled it, can I get a refund?",
   "我的订单 %s 什么时候发货？",
   "如何修改账户 %s 的收货地址？",
   "会员卡 %s 的积分怎么兑换？",
   "发票 %s 开错了抬头，可以重开吗？",
}

local cached = {
   "What are your opening hours?",
   "How do I track my parcel?",
   "Do you ship abroad?",
   "How can I change my password?",
   "What payment methods do you accept?",
   "你们的营业时间是什么？",
   "怎么查询物流？",
   "可以开发票吗？",
}

local function json_string(s)
   return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function init(args)
   mode = os.getenv("BENCH_MODE") or "text"
   salt = os.getenv("BENCH_SALT") or "0"
   model = os.getenv("BENCH_MODEL") or "m"
   counter = 0
   pool = {}
   queries = {}
   if mode == "kb" then
      for line in io.lines(os.getenv("BENCH_QUERIES")) do
         if #line > 0 then table.insert(queries, line) end
      end
      assert(#queries > 0, "BENCH_QUERIES is empty")
   end
   if mode == "image" then
      for line in io.lines(os.getenv("BENCH_POOL")) do
         local token, attachment = line:match("^(%S+)%s+(%S+)$")
         if token then table.insert(pool, {token, attachment}) end
      end
      assert(#pool > 0, "BENCH_POOL is empty")
   end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   if mode == "openai" then
      wrk.path = "/v1/chat/completions"
      wrk.headers["Authorization"] = "Bearer sk-bench"
   else
      wrk.path = "/api/v1/chat"
   end
end

function request()
   counter = counter + 1
   local id = salt .. "-" .. tid .. "-" .. counter
   local text, extra = nil, ""
   if mode == "cache" then
      text = cached[counter % #cached + 1]
   elseif mode == "kb" then
      text = queries[(counter * nthreads + tid) % #queries + 1] .. " (ticket " .. id .. ")"
   else
      text = string.format(plain[counter % #plain + 1], id)
   end
   local body
   if mode == "openai" then
      body = '{"model":' .. json_string(model) .. ',"messages":[{"role":"user","content":' .. json_string(text) .. '}]}'
   else
      if mode == "image" then
         local visitor = pool[(counter * nthreads + tid) % #pool + 1]
         extra = ',"visitor_token":' .. json_string(visitor[1]) .. ',"attachments":[' .. json_string(visitor[2]) .. ']'
         text = "What is wrong in this photo? Ticket " .. id
      end
      body = '{"text":' .. json_string(text) .. extra .. '}'
   end
   return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   local p = function(q) return latency:percentile(q) / 1000.0 end
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_s":%.3f,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_ms":{"p50":%.3f,"p90":%.3f,"p95":%.3f,"p99":%.3f,"max":%.3f,"mean":%.3f}}\n',
      summary.requests, summary.duration / 1e6, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      p(50), p(90), p(95), p(99), latency.max / 1000.0, latency.mean / 1000.0))
end
