# The image of a backup-actions service process: its esbuild bundle on Node.js 24.
FROM public.ecr.aws/docker/library/node:24-bookworm-slim
WORKDIR /service
COPY main.js main.js.map ./
USER node
ENV NODE_OPTIONS="--max-old-space-size=128 --enable-source-maps"
CMD ["node", "main.js"]
